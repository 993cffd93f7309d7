import type OpenAI from 'openai';
import type { BatchDeleted } from '../shared/openai';
import { intOption, parseCommand, takePositionals, UsageError } from './args';
import { CONNECTION_HELP, CONNECTION_OPTIONS, createClient } from './client';
import { describeBatch, utc } from './format';

export const BATCHES_USAGE = `usage: besh batches list [--limit N] [--all]
       besh batches get ID [--json]
       besh batches cancel ID
       besh batches delete ID

  list      newest first: the newest N (default 20), or --all
  get       the batch, times in UTC; --json prints the Batch object
  cancel    stops sending requests; lines already answered stay in the output file
  delete    cancels a running batch first, deletes it and its output and error files; the input file stays
${CONNECTION_HELP}`;

/** The API's page size limit for batches. */
const MAX_PAGE = 100;

/** `batches/{id}` for the SDK's verbs, with the id escaped so it cannot change the path. */
export const batchPath = (id: string) => `/batches/${encodeURIComponent(id)}`;

export function deleteBatch(client: OpenAI, id: string): Promise<BatchDeleted> {
  // DELETE /v1/batches/{id} is BESH's, so the SDK has no method for it.
  return client.delete<BatchDeleted>(batchPath(id));
}

async function list(client: OpenAI, limit: number | null): Promise<void> {
  // The first page before the header, so an error does not follow a header.
  const first = await client.batches.list({ limit: Math.min(limit ?? MAX_PAGE, MAX_PAGE) });
  console.log(['ID', 'STATUS', 'ENDPOINT', 'REQUESTS (DONE/TOTAL, FAILED)', 'CREATED (UTC)'].join('\t'));
  let shown = 0;
  // The SDK follows `after` from page to page; stopping at `limit` never asks for pages nobody reads.
  for await (const b of first) {
    const c = b.request_counts ?? { total: 0, completed: 0, failed: 0 };
    const requests = `${c.completed + c.failed}/${c.total}, ${c.failed}`;
    console.log([b.id, b.status, b.endpoint, requests, utc(b.created_at)].join('\t'));
    if (limit !== null && ++shown >= limit) break;
  }
}

export async function batches(args: string[]): Promise<void> {
  const { values, positionals } = parseCommand(args, BATCHES_USAGE, {
    ...CONNECTION_OPTIONS,
    limit: { type: 'string' },
    all: { type: 'boolean' },
    json: { type: 'boolean' },
  });
  const [action, ...rest] = positionals;
  const misplaced =
    action !== 'list' && (values.limit !== undefined || values.all)
      ? '--limit and --all go with list'
      : action !== 'get' && values.json
        ? '--json goes with get'
        : null;
  if (misplaced) throw new UsageError(`${misplaced}\n\n${BATCHES_USAGE}`);
  if (action === 'list') {
    takePositionals(rest, [], BATCHES_USAGE);
    if (values.all && values.limit !== undefined) throw new UsageError('give --limit or --all, not both');
    const limit = values.all ? null : intOption(values.limit, '--limit', 20, 1);
    return list(createClient(values), limit);
  }
  if (action !== 'get' && action !== 'cancel' && action !== 'delete') {
    throw new UsageError(`${action ? `unknown action "${action}"` : 'missing action'}\n\n${BATCHES_USAGE}`);
  }
  const [id] = takePositionals(rest, ['ID'], BATCHES_USAGE);
  const client = createClient(values);
  if (action === 'get') {
    const b = await client.batches.retrieve(id);
    console.log(values.json ? JSON.stringify(b, null, 2) : describeBatch(b));
  } else if (action === 'cancel') {
    const b = await client.batches.cancel(id);
    console.log(`${b.id} is ${b.status}; lines already answered stay in its output file.`);
  } else {
    const deleted = await deleteBatch(client, id);
    console.log(`Deleted ${deleted.id} and its output and error files; its input file stays.`);
  }
}
