import { isTerminal } from '../batches/lifecycle';
import type OpenAI from 'openai';

/** UTC ISO-8601 with `Z`, to the second (BESH's timestamps are whole seconds); `-` when unset. */
export function utc(seconds: number | null | undefined): string {
  return seconds == null ? '-' : new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}

export function countsText(b: OpenAI.Batch): string {
  const c = b.request_counts ?? { total: 0, completed: 0, failed: 0 };
  return `${c.total} total, ${c.completed} completed, ${c.failed} failed`;
}

/** A batch for people: one `name  value` line per field that is set, times in UTC, then its errors. */
export function describeBatch(b: OpenAI.Batch): string {
  const at = (seconds: number | null | undefined) => (seconds == null ? null : utc(seconds));
  const rows: Array<[string, string | null | undefined]> = [
    ['id', b.id],
    ['status', b.status],
    ['endpoint', b.endpoint],
    ['model', b.model],
    ['requests', countsText(b)],
    ['tokens', b.usage && `${b.usage.input_tokens} in, ${b.usage.output_tokens} out`],
    ['input file', b.input_file_id],
    ['output file', b.output_file_id],
    ['error file', b.error_file_id],
    ['window', b.completion_window],
    ['created', at(b.created_at)],
    ['in progress', at(b.in_progress_at)],
    ['finalizing', at(b.finalizing_at)],
    ['completed', at(b.completed_at)],
    ['failed', at(b.failed_at)],
    ['expired', at(b.expired_at)],
    ['cancelling', at(b.cancelling_at)],
    ['cancelled', at(b.cancelled_at)],
    ['expires', at(b.expires_at)],
  ];
  const lines = rows
    .filter((r): r is [string, string] => r[1] != null && r[1] !== '')
    .map(([name, value]) => `${name.padEnd(12)}${value}`);
  const metadata = Object.entries(b.metadata ?? {});
  if (metadata.length)
    lines.push(`${'metadata'.padEnd(12)}${metadata.map(([k, v]) => `${k}=${v}`).join(', ')}`);
  for (const e of errorTexts(b)) lines.push(`${'error'.padEnd(12)}${e}`);
  return lines.join('\n');
}

/** Why a batch failed: one `line N: code: message` per problem. */
export function errorTexts(b: OpenAI.Batch): string[] {
  return (b.errors?.data ?? []).map(
    (e) => `${e.line != null ? `line ${e.line}: ` : ''}${e.code}: ${e.message}`,
  );
}

/** `1 batch`, `2 batches`, `3 files`. */
/** besh exits 1 for a batch that ended without completing (README: exit status). */
export function requireCompleted(b: OpenAI.Batch): void {
  if (isTerminal(b.status) && b.status !== 'completed')
    throw new Error(`batch ${b.id} ended ${b.status}, not completed`);
}

export const plural = (n: number, word: string) =>
  `${n} ${word}${n === 1 ? '' : word.endsWith('ch') ? 'es' : 's'}`;
