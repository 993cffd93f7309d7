import assert from 'node:assert/strict';
import type OpenAI from 'openai';
import { toFile } from 'openai';
import type { Batch } from 'openai/resources/batches';
import { expectedContentPrefix, expectedEmbedding, fingerprint } from '../../src/simulator/answer';
import type { BatchEndpoint, BatchResultLine } from '../../src/shared/openai';

export function requestBody(
  endpoint: BatchEndpoint,
  i: number,
  model = 'sim-model',
): Record<string, unknown> {
  switch (endpoint) {
    case '/v1/chat/completions':
      return { model, messages: [{ role: 'user', content: `question ${i}` }], max_tokens: 8 };
    case '/v1/completions':
      return { model, prompt: `prompt ${i}`, max_tokens: 8 };
    case '/v1/embeddings':
      return { model, input: `text ${i}` };
    case '/v1/responses':
      return { model, input: `input ${i}`, max_output_tokens: 8 };
  }
}

export function batchLines(n: number, endpoint: BatchEndpoint = '/v1/chat/completions', model?: string) {
  return Array.from({ length: n }, (_, i) => ({
    custom_id: `req-${i}`,
    method: 'POST' as const,
    url: endpoint,
    body: requestBody(endpoint, i, model),
  }));
}

export const toJsonl = (lines: unknown[]) => lines.map((l) => JSON.stringify(l)).join('\n') + '\n';

export async function uploadBatchFile(openai: OpenAI, content: string) {
  return openai.files.create({ file: await toFile(Buffer.from(content), 'batch.jsonl'), purpose: 'batch' });
}

export async function createBatch(
  openai: OpenAI,
  content: string,
  opts: { endpoint?: BatchEndpoint; window?: string; metadata?: Record<string, string> } = {},
) {
  const file = await uploadBatchFile(openai, content);
  return openai.batches.create({
    input_file_id: file.id,
    endpoint: opts.endpoint ?? '/v1/chat/completions',
    completion_window: (opts.window ?? '24h') as '24h',
    metadata: opts.metadata,
  });
}

const TERMINAL = new Set(['completed', 'failed', 'expired', 'cancelled']);

/** Polls like a client would until the batch reaches a final status (or `until` holds). */
export async function waitForBatch(
  openai: OpenAI,
  id: string,
  opts: { timeoutMs?: number; until?: (b: Batch) => boolean } = {},
): Promise<Batch> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  const until = opts.until ?? ((b: Batch) => TERMINAL.has(b.status));
  for (;;) {
    const b = await openai.batches.retrieve(id);
    if (until(b)) return b;
    if (Date.now() > deadline)
      assert.fail(`batch ${id} still ${b.status} after ${opts.timeoutMs ?? 60_000} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function downloadLines(
  openai: OpenAI,
  fileId: string | null | undefined,
): Promise<BatchResultLine[]> {
  if (!fileId) return [];
  const text = await (await openai.files.content(fileId)).text();
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as BatchResultLine);
}

/** Checks that a simulator answer was produced for exactly this request body. */
export function assertAnswers(endpoint: BatchEndpoint, body: Record<string, unknown>, answer: unknown) {
  const a = answer as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  switch (endpoint) {
    case '/v1/chat/completions':
      assert.ok(a.choices[0].message.content.startsWith(expectedContentPrefix(body)));
      break;
    case '/v1/completions':
      assert.ok(a.choices[0].text.startsWith(expectedContentPrefix(body)));
      break;
    case '/v1/embeddings':
      assert.deepEqual(a.data[0].embedding, expectedEmbedding(body.input));
      break;
    case '/v1/responses':
      assert.ok(JSON.stringify(a.output).includes(fingerprint(body)));
      break;
  }
}

/**
 * The invariant of every batch: each input line is in exactly one of the two files, none twice, nothing extra,
 * and the batch's counts agree with the files.
 */
export async function assertEveryLineOnce(
  openai: OpenAI,
  batch: Batch,
  input: Array<{ custom_id: string }>,
): Promise<{ out: BatchResultLine[]; err: BatchResultLine[] }> {
  const out = await downloadLines(openai, batch.output_file_id);
  const err = await downloadLines(openai, batch.error_file_id);
  const seen = new Map<string, number>();
  for (const l of [...out, ...err]) seen.set(l.custom_id, (seen.get(l.custom_id) ?? 0) + 1);
  const dupes = [...seen].filter(([, n]) => n > 1).map(([id]) => id);
  assert.deepEqual(dupes, [], 'no custom_id twice');
  const missing = input.filter((l) => !seen.has(l.custom_id)).map((l) => l.custom_id);
  assert.deepEqual(missing.slice(0, 10), [], `every line answered (${missing.length} missing)`);
  assert.equal(seen.size, input.length, 'nothing extra');
  assert.deepEqual(batch.request_counts, { total: input.length, completed: out.length, failed: err.length });
  return { out, err };
}
