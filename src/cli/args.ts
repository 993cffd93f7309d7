import { parseArgs } from 'node:util';

/** A mistake on the command line: besh prints the message and exits 2. */
export class UsageError extends Error {}

/** `--help`: besh prints the text on stdout and exits 0. */
export class HelpRequested extends Error {}

type OptionSpec = { type: 'string' | 'boolean'; short?: string; multiple?: boolean };

/**
 * `parseArgs` with strict options, `--help`/`-h` on every command (before any other check, so help works even
 * on a broken command line), and parse errors turned into usage errors that show the command's usage.
 */
export function parseCommand<O extends Record<string, OptionSpec>>(
  args: string[],
  usage: string,
  options: O,
) {
  const end = args.includes('--') ? args.indexOf('--') : args.length;
  if (args.slice(0, end).some((a) => a === '--help' || a === '-h')) throw new HelpRequested(usage);
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      throw new UsageError(`${(err as Error).message}\n\n${usage}`);
    }
    throw err;
  }
}

/** Exactly the named positionals, named in the message when they are missing or extra. */
export function takePositionals(positionals: string[], names: string[], usage: string): string[] {
  if (positionals.length !== names.length) {
    const what = positionals.length < names.length ? `missing ${names.join(' ')}` : 'too many arguments';
    throw new UsageError(`${what}\n\n${usage}`);
  }
  return positionals;
}

export function intOption(raw: string | undefined, flag: string, fallback: number, min: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min)
    throw new UsageError(`${flag} must be a whole number ≥ ${min} (got "${raw}")`);
  return n;
}

/** `raw` if it is one of `allowed`, typed as such. */
export function choiceOption<T extends string>(raw: string, flag: string, allowed: readonly T[]): T {
  const found = allowed.find((a) => a === raw);
  if (found === undefined)
    throw new UsageError(`${flag} must be one of ${allowed.join(', ')} (got "${raw}")`);
  return found;
}
