#!/usr/bin/env node
import { APIConnectionError } from 'openai';
import { ConfigError } from '../config';
import { HelpRequested, UsageError } from './args';
import { DEFAULT_BASE_URL } from './client';

const USAGE = `usage: besh COMMAND [options]

  upload FILE [--purpose PURPOSE] [--json]      upload a file; prints its id
  submit FILE --endpoint ENDPOINT [--window 24h] [--metadata KEY=VALUE]... [--wait]
                                                upload and create a batch; prints its id
  batches list [--limit N] [--all]              batches, newest first
  batches get ID [--json]                       one batch, times in UTC
  batches cancel ID                             stop a batch; answered lines stay
  batches delete ID                             delete a batch and its result files
  get ID [--lines N]                            status, counts and the first N result lines
  get ID --partial [--errors] [--follow]        the result lines answered so far, running or not
  delete [--files] [--batches] [--dry-run] [--yes]
                                                delete every file and/or batch of the key's tenant
  webhooks add URL [--events a,b]               signed batch events to URL; prints the endpoint's secret
  webhooks list | webhooks delete ID
  keys create [--name NAME] [--tenant TENANT] [--operator]
                                                manage API keys, on the database
  keys list
  keys revoke KEY_ID

API commands read BESH_BASE_URL (default ${DEFAULT_BASE_URL}) and BESH_API_KEY, or --base-url and
--api-key. \`besh COMMAND --help\` tells more. Exit status: 0 done, 1 error (or a batch that did not complete),
2 wrong usage.`;

type Command = (args: string[]) => Promise<void>;

// Loaded on demand: the API commands start without loading the database drivers the key commands need.
const COMMANDS: Record<string, () => Promise<Command>> = {
  upload: async () => (await import('./files')).upload,
  submit: async () => (await import('./submit')).submit,
  batches: async () => (await import('./batches')).batches,
  get: async () => (await import('./get')).get,
  delete: async () => (await import('./delete')).deleteAll,
  keys: async () => (await import('./keys')).keys,
  webhooks: async () => (await import('./webhooks')).webhooks,
};

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    throw new HelpRequested(USAGE);
  }
  const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!load) throw new UsageError(`unknown command "${name}"\n\n${USAGE}`);
  await (
    await load()
  )(rest);
}

/** The innermost cause, which names the real problem (`connect ECONNREFUSED 127.0.0.1:5000`). */
function rootCause(err: Error): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}

function report(err: unknown): number {
  if (err instanceof HelpRequested) {
    console.log(err.message);
    return 0;
  }
  if (err instanceof UsageError || err instanceof ConfigError) {
    console.error(`besh: ${err.message}`);
    return 2;
  }
  if (err instanceof APIConnectionError) {
    console.error(`besh: cannot reach the API (${rootCause(err)}); check BESH_BASE_URL or --base-url`);
  } else {
    // An APIError's message is already `<status> <the API's message>`.
    console.error(`besh: ${err instanceof Error ? err.message : String(err)}`);
  }
  return 1;
}

// exitCode, not exit(): output still flowing into a pipe is written out before the process ends.
main(process.argv.slice(2)).then(
  () => (process.exitCode = 0),
  (err: unknown) => (process.exitCode = report(err)),
);
