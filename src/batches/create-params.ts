import { BATCH_ENDPOINTS, BATCH_PRIORITIES, type BatchEndpoint, type BatchPriority } from '../shared/openai';

export interface CreateBatchParams {
  inputFileId: string;
  endpoint: BatchEndpoint;
  completionWindow: string;
  windowSeconds: number;
  metadata: Record<string, string> | null;
  outputExpiresAfterSeconds: number | null;
  /** BESH extension; `normal` when absent. */
  priority?: BatchPriority;
}

/** A client mistake in the create-batch body; the API answers it with a 400 naming `param`. */
export class ParamError extends Error {
  constructor(
    message: string,
    readonly param: string | null,
    readonly code = 'invalid_value',
  ) {
    super(message);
  }
}

const KNOWN = new Set([
  'input_file_id',
  'endpoint',
  'completion_window',
  'metadata',
  'output_expires_after',
  'priority', // BESH extension
]);
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

export function windowSeconds(window: string): number | null {
  const m = /^([1-9][0-9]{0,6})([smhd])$/.exec(window);
  return m ? Number(m[1]) * UNIT_SECONDS[m[2]] : null;
}

const formatWindow = (s: number) => (s % 3600 === 0 ? `${s / 3600}h` : `${s}s`);

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks a POST /v1/batches body the way OpenAI does; the completion window range is configurable. */
export function parseCreateBatch(
  body: unknown,
  limits: { minWindowSeconds: number; maxWindowSeconds: number },
): CreateBatchParams {
  if (!isPlainObject(body))
    throw new ParamError('The request body must be a JSON object.', null, 'invalid_request');
  for (const key of Object.keys(body)) {
    if (!KNOWN.has(key))
      throw new ParamError(
        `Unrecognized request argument supplied: ${key.slice(0, 64)}`,
        key.slice(0, 64),
        'unknown_parameter',
      );
  }
  const { input_file_id, endpoint, completion_window, metadata, output_expires_after, priority } = body;
  if (typeof input_file_id !== 'string' || !input_file_id) {
    throw new ParamError(
      "Missing required parameter: 'input_file_id'.",
      'input_file_id',
      'missing_required_parameter',
    );
  }
  if (typeof endpoint !== 'string' || !(BATCH_ENDPOINTS as readonly string[]).includes(endpoint)) {
    throw new ParamError(`Invalid 'endpoint': expected one of ${BATCH_ENDPOINTS.join(', ')}.`, 'endpoint');
  }
  if (typeof completion_window !== 'string') {
    throw new ParamError(
      "Missing required parameter: 'completion_window'.",
      'completion_window',
      'missing_required_parameter',
    );
  }
  const seconds = windowSeconds(completion_window);
  if (seconds === null || seconds < limits.minWindowSeconds || seconds > limits.maxWindowSeconds) {
    const range =
      limits.minWindowSeconds === limits.maxWindowSeconds
        ? `'${formatWindow(limits.minWindowSeconds)}'`
        : `a duration from '${formatWindow(limits.minWindowSeconds)}' to '${formatWindow(limits.maxWindowSeconds)}'`;
    throw new ParamError(`Invalid 'completion_window': expected ${range}.`, 'completion_window');
  }
  if (metadata !== undefined && metadata !== null) {
    if (!isPlainObject(metadata))
      throw new ParamError("'metadata' must be an object of string values.", 'metadata');
    const entries = Object.entries(metadata);
    if (entries.length > 16) throw new ParamError("'metadata' may have at most 16 keys.", 'metadata');
    for (const [k, v] of entries) {
      if (k.length === 0 || k.length > 64)
        throw new ParamError("'metadata' keys must be 1 to 64 characters long.", 'metadata');
      if (typeof v !== 'string' || v.length > 512) {
        throw new ParamError("'metadata' values must be strings of at most 512 characters.", `metadata.${k}`);
      }
    }
  }
  let outputExpiresAfterSeconds: number | null = null;
  if (output_expires_after !== undefined && output_expires_after !== null) {
    const o = output_expires_after;
    if (
      !isPlainObject(o) ||
      Object.keys(o).some((k) => k !== 'anchor' && k !== 'seconds') ||
      o.anchor !== 'created_at' ||
      !Number.isInteger(o.seconds) ||
      (o.seconds as number) < 3600 ||
      (o.seconds as number) > 2592000
    ) {
      throw new ParamError(
        '\'output_expires_after\' must be {"anchor": "created_at", "seconds": 3600..2592000}.',
        'output_expires_after',
      );
    }
    outputExpiresAfterSeconds = o.seconds as number;
  }
  if (
    priority !== undefined &&
    priority !== null &&
    !(BATCH_PRIORITIES as readonly unknown[]).includes(priority)
  ) {
    throw new ParamError(`Invalid 'priority': expected one of ${BATCH_PRIORITIES.join(', ')}.`, 'priority');
  }
  return {
    inputFileId: input_file_id,
    endpoint: endpoint as BatchEndpoint,
    completionWindow: completion_window,
    windowSeconds: seconds,
    metadata: (metadata as Record<string, string> | null | undefined) ?? null,
    outputExpiresAfterSeconds,
    priority: (priority as BatchPriority | null | undefined) ?? 'normal',
  };
}
