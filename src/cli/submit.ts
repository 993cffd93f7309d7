import type OpenAI from 'openai';
import { isTerminal } from '../batches/lifecycle';
import { BATCH_ENDPOINTS } from '../shared/openai';
import { choiceOption, parseCommand, takePositionals, UsageError } from './args';
import { CONNECTION_HELP, CONNECTION_OPTIONS, createClient } from './client';
import { uploadFile } from './files';
import { describeBatch, requireCompleted } from './format';
import { ProgressReporter } from './progress';

const POLL_MS = 1000;

export const SUBMIT_USAGE = `usage: besh submit FILE --endpoint ENDPOINT [--window 24h] [--metadata KEY=VALUE]... [--wait]

Uploads FILE (purpose batch), creates a batch from it and prints the batch id.
  --endpoint ENDPOINT    ${BATCH_ENDPOINTS.join(', ')}
  --window WINDOW        completion window (default 24h)
  --metadata KEY=VALUE   may be repeated
  --wait                 show progress until the batch ends, then print it; exit 0 only if it completed
${CONNECTION_HELP}`;

function parseMetadata(pairs: string[] | undefined): Record<string, string> | undefined {
  if (!pairs?.length) return undefined;
  const entries = pairs.map((pair) => {
    const eq = pair.indexOf('=');
    if (eq < 1) throw new UsageError(`--metadata takes KEY=VALUE (got "${pair}")`);
    return [pair.slice(0, eq), pair.slice(eq + 1)] as const;
  });
  return Object.fromEntries(entries);
}

/** Polls until the batch ends, drawing progress on stderr so stdout stays the batch id and its summary. */
async function waitForEnd(client: OpenAI, id: string): Promise<OpenAI.Batch> {
  const progress = new ProgressReporter(process.stderr);
  const onInterrupt = () => {
    progress.finish();
    console.error(`besh: stopped waiting; ${id} keeps running (besh batches cancel ${id} stops it)`);
    process.exit(130);
  };
  process.once('SIGINT', onInterrupt);
  try {
    for (;;) {
      const batch = await client.batches.retrieve(id);
      progress.update(batch.status, batch.request_counts ?? { total: 0, completed: 0, failed: 0 });
      if (isTerminal(batch.status)) return batch;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    progress.finish();
    process.off('SIGINT', onInterrupt);
  }
}

export async function submit(args: string[]): Promise<void> {
  const { values, positionals } = parseCommand(args, SUBMIT_USAGE, {
    ...CONNECTION_OPTIONS,
    endpoint: { type: 'string' },
    window: { type: 'string' },
    metadata: { type: 'string', multiple: true },
    wait: { type: 'boolean' },
  });
  const [file] = takePositionals(positionals, ['FILE'], SUBMIT_USAGE);
  if (!values.endpoint) throw new UsageError(`--endpoint is required\n\n${SUBMIT_USAGE}`);
  const endpoint = choiceOption(values.endpoint, '--endpoint', BATCH_ENDPOINTS);
  const metadata = parseMetadata(values.metadata);
  const client = createClient(values);

  const input = await uploadFile(client, file, 'batch');
  let batch: OpenAI.Batch;
  try {
    batch = await client.batches.create({
      input_file_id: input.id,
      endpoint,
      // The SDK types only OpenAI's window; BESH accepts others when the operator widens the bounds.
      completion_window: (values.window ?? '24h') as '24h',
      metadata,
    });
  } catch (err) {
    // No batch refers to the upload, so nobody would ever clean it up.
    await client.files.delete(input.id).catch(() => undefined);
    throw err;
  }
  console.log(batch.id);
  if (!values.wait) return;

  const final = await waitForEnd(client, batch.id);
  console.log(describeBatch(final));
  requireCompleted(final);
}
