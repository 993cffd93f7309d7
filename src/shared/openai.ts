// The OpenAI Files and Batches wire shapes, typed once and shared by the API, the engine, tests and the CLI.

export const BATCH_ENDPOINTS = [
  '/v1/chat/completions',
  '/v1/completions',
  '/v1/embeddings',
  '/v1/responses',
] as const;
export type BatchEndpoint = (typeof BATCH_ENDPOINTS)[number];

/** BESH extension: how a batch is served against others (admission and each worker's share of its slots). */
export const BATCH_PRIORITIES = ['high', 'normal', 'low'] as const;
export type BatchPriority = (typeof BATCH_PRIORITIES)[number];

export const UPLOAD_PURPOSES = ['assistants', 'batch', 'fine-tune', 'vision', 'user_data', 'evals'] as const;
export type UploadPurpose = (typeof UPLOAD_PURPOSES)[number];
export type FilePurpose = UploadPurpose | 'batch_output';

export interface FileObject {
  id: string;
  object: 'file';
  bytes: number;
  created_at: number;
  filename: string;
  purpose: FilePurpose;
  status: 'uploaded' | 'processed' | 'error';
  expires_at: number | null;
  status_details: string | null;
}

export interface FileDeleted {
  id: string;
  object: 'file';
  deleted: boolean;
}

/** Answer of DELETE /v1/batches/{id}, an extension kept from the original BESH. */
export interface BatchDeleted {
  id: string;
  object: 'batch';
  deleted: boolean;
}

export const BATCH_STATUSES = [
  'validating',
  'failed',
  'in_progress',
  'finalizing',
  'completed',
  'expired',
  'cancelling',
  'cancelled',
] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];

export interface BatchError {
  code: string;
  message: string;
  param: string | null;
  line: number | null;
}

export interface RequestCounts {
  total: number;
  completed: number;
  failed: number;
}

export interface BatchUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

export interface Batch {
  id: string;
  object: 'batch';
  endpoint: string;
  model: string | null;
  errors: { object: 'list'; data: BatchError[] } | null;
  input_file_id: string;
  completion_window: string;
  status: BatchStatus;
  output_file_id: string | null;
  error_file_id: string | null;
  created_at: number;
  in_progress_at: number | null;
  expires_at: number | null;
  finalizing_at: number | null;
  completed_at: number | null;
  failed_at: number | null;
  expired_at: number | null;
  cancelling_at: number | null;
  cancelled_at: number | null;
  request_counts: RequestCounts;
  usage: BatchUsage;
  metadata: Record<string, string> | null;
  /** BESH extension (a create parameter the SDKs send with `extra_body`). */
  priority: BatchPriority;
}

export interface ListPage<T> {
  object: 'list';
  data: T[];
  first_id: string | null;
  last_id: string | null;
  has_more: boolean;
}

export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** One line of a batch output or error file. */
export interface BatchResultLine {
  id: string;
  custom_id: string;
  response: { status_code: number; request_id: string; body: unknown } | null;
  error: { code: string; message: string } | null;
}

/** `GET /v1/models`: a model the pool serves. */
export interface Model {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}
