import { createInterface } from 'node:readline/promises';
import OpenAI from 'openai';
import { parseCommand, takePositionals, UsageError } from './args';
import { deleteBatch } from './batches';
import { CONNECTION_HELP, CONNECTION_OPTIONS, createClient } from './client';
import { plural, utc } from './format';

export const DELETE_USAGE = `usage: besh delete [--files] [--batches] [--dry-run] [--yes]

Deletes every file and/or every batch of the API key's tenant (other tenants' are never touched).
  --files     delete the files (a file still used by a running batch stays: cancel it first, or add --batches)
  --batches   delete the batches (running ones are cancelled first), with their output and error files
  --dry-run   only list what would be deleted
  --yes       do not ask; required when stdin is not a terminal
${CONNECTION_HELP}`;

/** Deletions in flight at once: enough to be quick, few enough not to crowd a small server. */
const PARALLEL = 8;

interface Target {
  kind: 'batch' | 'file';
  id: string;
  label: string;
}

/**
 * Every id first, then the deletions: paging with `after` while deleting would move the cursor under our feet
 * (and a cursor that names a deleted object is an error), and a fixed list always ends.
 */
async function collect(client: OpenAI, files: boolean, batches: boolean): Promise<Target[]> {
  const targets: Target[] = [];
  if (batches) {
    for await (const b of client.batches.list({ limit: 100 })) {
      targets.push({ kind: 'batch', id: b.id, label: `${b.status}, created ${utc(b.created_at)}` });
    }
  }
  if (files) {
    for await (const f of client.files.list({ limit: 10_000 })) {
      targets.push({ kind: 'file', id: f.id, label: `${f.filename}, ${f.purpose}, ${f.bytes} bytes` });
    }
  }
  return targets;
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

async function remove(client: OpenAI, t: Target): Promise<boolean> {
  try {
    if (t.kind === 'batch') await deleteBatch(client, t.id);
    else await client.files.delete(t.id);
    console.log(`deleted ${t.kind} ${t.id}`);
    return true;
  } catch (err) {
    // A batch's result files go with it, so a file listed before its batch was deleted may be gone already.
    if (t.kind === 'file' && err instanceof OpenAI.NotFoundError) {
      console.log(`deleted file ${t.id} (with its batch)`);
      return true;
    }
    console.error(`besh: could not delete ${t.kind} ${t.id}: ${(err as Error).message}`);
    return false;
  }
}

export async function deleteAll(args: string[]): Promise<void> {
  const { values, positionals } = parseCommand(args, DELETE_USAGE, {
    ...CONNECTION_OPTIONS,
    files: { type: 'boolean' },
    batches: { type: 'boolean' },
    'dry-run': { type: 'boolean' },
    yes: { type: 'boolean' },
  });
  takePositionals(positionals, [], DELETE_USAGE);
  if (!values.files && !values.batches) {
    throw new UsageError(`say what to delete: --files, --batches or both\n\n${DELETE_USAGE}`);
  }
  const interactive = Boolean(process.stdin.isTTY);
  if (!values['dry-run'] && !values.yes && !interactive) {
    throw new UsageError('stdin is not a terminal, so besh cannot ask: add --yes to delete without asking');
  }
  const client = createClient(values);
  const targets = await collect(client, Boolean(values.files), Boolean(values.batches));
  const batchCount = targets.filter((t) => t.kind === 'batch').length;
  const summary = `${plural(batchCount, 'batch')} and ${plural(targets.length - batchCount, 'file')}`;
  if (values['dry-run']) {
    for (const t of targets) console.log(`would delete ${t.kind} ${t.id} (${t.label})`);
    console.error(`Dry run: would delete ${summary}; nothing was deleted.`);
    return;
  }
  if (targets.length === 0) {
    console.error('Nothing to delete.');
    return;
  }
  if (!values.yes && !(await confirm(`Delete ${summary} of this key's tenant? [y/N] `))) {
    console.error('Nothing deleted.');
    return;
  }
  // Batches first: deleting one stops it, which frees its input file for deletion.
  let failed = 0;
  for (const kind of ['batch', 'file'] as const) {
    const queue = targets.filter((t) => t.kind === kind);
    await Promise.all(
      Array.from({ length: Math.min(PARALLEL, queue.length) }, async () => {
        for (let t = queue.shift(); t; t = queue.shift()) if (!(await remove(client, t))) failed++;
      }),
    );
  }
  if (failed) throw new Error(`${failed} of ${targets.length} deletions failed (see above)`);
  console.error(`Deleted ${summary}.`);
}
