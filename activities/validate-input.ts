import { heartbeat } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { isUnfinished } from '../src/batches/lifecycle';
import { poolServing, type PoolConfig } from '../src/config';
import { BatchEntity, MODEL_MAX_LENGTH } from '../src/db/entities';
import { readLines } from '../src/files/line-reader';
import type { BatchError } from '../src/shared/openai';
import {
  BATCH_GONE,
  type Chunk,
  type ValidateInput,
  type ValidationResult,
} from '../src/contract/batch-workflow';
import type { ActivityDeps } from './deps';

/** Enough to explain a bad file; more would only bloat the workflow history. */
const MAX_ERRORS = 100;
/**
 * Each chunk costs an activity (Temporal server and SDK time), a progress row and a listing of its checkpoint: at
 * 50-line chunks that was most of the CPU a request cost. About 50 chunks of at least 100 lines keep that small,
 * and a 50,000-request history near 300 events; the requests in flight do not depend on the chunk size.
 */
const TARGET_CHUNKS = 50;
const MIN_CHUNK = 100;
const MAX_CHUNK = 1000;

export const chunkSizeFor = (total: number) =>
  Math.min(MAX_CHUNK, Math.max(MIN_CHUNK, Math.ceil(total / TARGET_CHUNKS)));

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks every line of a batch input file the way OpenAI does (errors carry the line number) and, when the file
 * is good, plans its chunks as byte ranges so that no request body ever travels through Temporal. First checks
 * that the batch still awaits its run: a start that reached Temporal after the API had given up (and deleted
 * the batch) must not run, nor one whose batch was already failed for want of a run.
 */
export function validateInputActivity(deps: ActivityDeps) {
  return async function validateInput(input: ValidateInput): Promise<ValidationResult> {
    const batch = await deps.db
      .getRepository(BatchEntity)
      .findOne({ select: { status: true }, where: { id: input.batchId } });
    if (!batch || !isUnfinished(batch.status)) {
      throw ApplicationFailure.nonRetryable(
        `Batch ${input.batchId} ${batch ? `is already ${batch.status}` : 'does not exist'}: nothing to run.`,
        BATCH_GONE,
      );
    }
    const { maxBatchRequests } = deps.config;
    const errors: BatchError[] = [];
    const fail = (code: string, message: string, line: number | null, param: string | null = null) => {
      if (errors.length < MAX_ERRORS) errors.push({ code, message, line, param });
    };
    const seen = new Set<string>();
    let model: string | null = null;
    /** The upstream pool of the batch's model: its slots size the chunk window. */
    let pool: PoolConfig | null = null;
    // Line boundaries of every request, as [start, end) byte offsets, kept as numbers only.
    const starts: number[] = [];
    let lastEnd = 0;
    const source = await deps.blobs.get(input.inputFileId);
    for await (const { line, start, end, number } of readLines(source)) {
      if (number % 5000 === 0) heartbeat(number);
      const text = line.toString('utf8');
      if (!text.trim()) continue;
      if (starts.length >= maxBatchRequests) {
        fail(
          'too_many_tasks',
          `The batch has more than the maximum of ${maxBatchRequests} requests.`,
          number,
        );
        break;
      }
      starts.push(start);
      lastEnd = end;
      let req: unknown;
      try {
        req = JSON.parse(text);
      } catch {
        fail('invalid_json_line', 'This line is not parseable as valid JSON.', number);
        continue;
      }
      if (!isObject(req)) {
        fail('invalid_json_line', 'This line is not a JSON object.', number);
        continue;
      }
      const id = req.custom_id;
      if (typeof id !== 'string' || id.length === 0 || id.length > 512) {
        fail(
          'missing_custom_id',
          'Each request needs a custom_id: a non-empty string of at most 512 characters.',
          number,
          'custom_id',
        );
      } else if (seen.has(id)) {
        fail(
          'duplicate_custom_id',
          `The custom_id '${id.slice(0, 64)}' is used by more than one request.`,
          number,
          'custom_id',
        );
      } else seen.add(id);
      if (req.method !== 'POST') fail('invalid_method', "The method must be 'POST'.", number, 'method');
      if (req.url !== input.endpoint) {
        fail('url_mismatch', `The url must match the batch endpoint '${input.endpoint}'.`, number, 'url');
      }
      if (!isObject(req.body)) {
        fail('missing_body', 'Each request needs a body object.', number, 'body');
        continue;
      }
      const m = req.body.model;
      if (typeof m !== 'string' || m.length === 0)
        fail('missing_model', 'The body must name a model.', number, 'body.model');
      else if (m.length > MODEL_MAX_LENGTH)
        fail(
          'invalid_model',
          `The model name is longer than ${MODEL_MAX_LENGTH} characters.`,
          number,
          'body.model',
        );
      else if (model === null) {
        model = m;
        pool = poolServing(deps.config.pools, m) ?? null;
        if (!pool) {
          fail(
            'model_not_found',
            `The model '${m.slice(0, 200)}' is not served here (GET /v1/models lists the models that are).`,
            number,
            'body.model',
          );
        }
      } else if (m !== model) {
        fail(
          'model_mismatch',
          `All requests in a batch must use the same model (the first request uses '${model.slice(0, 64)}').`,
          number,
          'body.model',
        );
      }
    }
    if (starts.length === 0 && errors.length === 0)
      fail('empty_file', 'The input file has no requests.', null);
    if (errors.length > 0 || model === null || pool === null) return { ok: false, errors };

    const size = chunkSizeFor(starts.length);
    const chunks: Chunk[] = [];
    for (let i = 0; i < starts.length; i += size) {
      const next = starts[i + size];
      chunks.push({
        index: chunks.length,
        start: starts[i],
        end: next ?? lastEnd,
        lines: Math.min(size, starts.length - i),
      });
    }
    // Enough chunks in flight that one batch alone can keep every upstream slot busy across chunk boundaries.
    const window = Math.min(64, Math.max(2, Math.ceil((2 * pool.maxWorkers) / size)));
    return {
      ok: true,
      total: starts.length,
      model,
      chunks,
      window,
      heartbeatTimeoutSeconds: deps.config.heartbeatTimeoutSeconds,
    };
  };
}
