import { EntitySchema, type ValueTransformer } from 'typeorm';
import type { BatchError, BatchPriority, BatchStatus, FilePurpose } from '../shared/openai';

// PostgreSQL returns BIGINT as a string; every bigint here is a count or unix seconds, safe as a number.
const bigintNumber: ValueTransformer = {
  to: (v: number | null | undefined) => v,
  from: (v: string | number | null) => (v === null ? null : Number(v)),
};
const epoch = { type: 'bigint', transformer: bigintNumber } as const;
const nullableEpoch = { ...epoch, nullable: true } as const;
const counter = { type: 'bigint', transformer: bigintNumber, default: 0 } as const;

/** A tenant key reaches its own tenant's files and batches; an operator key can also read /metrics. */
export type KeyRole = 'tenant' | 'operator';

export interface ApiKeyRow {
  id: string;
  tenantId: string;
  role: KeyRole;
  name: string | null;
  keyHash: string;
  keyPrefix: string;
  createdAt: number;
  revokedAt: number | null;
}

export const ApiKeyEntity = new EntitySchema<ApiKeyRow>({
  name: 'ApiKey',
  tableName: 'api_keys',
  columns: {
    id: { type: 'varchar', length: 64, primary: true },
    tenantId: { name: 'tenant_id', type: 'varchar', length: 64 },
    role: { type: 'varchar', length: 16, default: 'tenant' },
    name: { type: 'varchar', length: 200, nullable: true },
    keyHash: { name: 'key_hash', type: 'varchar', length: 64, unique: true },
    keyPrefix: { name: 'key_prefix', type: 'varchar', length: 16 },
    createdAt: { name: 'created_at', ...epoch },
    revokedAt: { name: 'revoked_at', ...nullableEpoch },
  },
});

export interface FileRow {
  id: string;
  owner: string;
  filename: string;
  purpose: FilePurpose;
  bytes: number;
  createdAt: number;
  expiresAt: number | null;
}

export const FileEntity = new EntitySchema<FileRow>({
  name: 'File',
  tableName: 'files',
  columns: {
    id: { type: 'varchar', length: 64, primary: true },
    owner: { type: 'varchar', length: 64 },
    filename: { type: 'varchar', length: 1024 },
    purpose: { type: 'varchar', length: 32 },
    bytes: { ...epoch },
    createdAt: { name: 'created_at', ...epoch },
    expiresAt: { name: 'expires_at', ...nullableEpoch },
  },
  indices: [{ name: 'idx_files_owner_created', columns: ['owner', 'createdAt'] }],
});

/** The longest model name a batch records (its column; Temporal's search attribute holds 2,048 bytes). */
export const MODEL_MAX_LENGTH = 256;

export interface UsageColumns {
  inputTokens: number;
  cachedTokens: number;
  outputTokens: number;
  reasoningTokens: number;
}

const usageColumns = {
  inputTokens: { name: 'input_tokens', ...counter },
  cachedTokens: { name: 'cached_tokens', ...counter },
  outputTokens: { name: 'output_tokens', ...counter },
  reasoningTokens: { name: 'reasoning_tokens', ...counter },
};

export interface BatchRow extends UsageColumns {
  id: string;
  owner: string;
  endpoint: string;
  model: string | null;
  inputFileId: string;
  completionWindow: string;
  status: BatchStatus;
  outputFileId: string | null;
  errorFileId: string | null;
  createdAt: number;
  inProgressAt: number | null;
  expiresAt: number | null;
  finalizingAt: number | null;
  completedAt: number | null;
  failedAt: number | null;
  expiredAt: number | null;
  cancellingAt: number | null;
  cancelledAt: number | null;
  total: number;
  completed: number;
  failed: number;
  metadata: Record<string, string> | null;
  errors: BatchError[] | null;
  outputExpiresAfterSeconds: number | null;
  priority: BatchPriority;
  /** Set by finalization: how many lines each chunk has in the output and error files, in chunk order. */
  resultIndex: ResultIndex | null;
}

/** Where each chunk's lines are in the result files: partial results carry a reader over from segments to files. */
export interface ResultIndex {
  out: number[];
  err: number[];
}

export const BatchEntity = new EntitySchema<BatchRow>({
  name: 'Batch',
  tableName: 'batches',
  columns: {
    id: { type: 'varchar', length: 64, primary: true },
    owner: { type: 'varchar', length: 64 },
    endpoint: { type: 'varchar', length: 64 },
    model: { type: 'varchar', length: MODEL_MAX_LENGTH, nullable: true },
    inputFileId: { name: 'input_file_id', type: 'varchar', length: 64 },
    completionWindow: { name: 'completion_window', type: 'varchar', length: 16 },
    status: { type: 'varchar', length: 16 },
    outputFileId: { name: 'output_file_id', type: 'varchar', length: 64, nullable: true },
    errorFileId: { name: 'error_file_id', type: 'varchar', length: 64, nullable: true },
    createdAt: { name: 'created_at', ...epoch },
    inProgressAt: { name: 'in_progress_at', ...nullableEpoch },
    expiresAt: { name: 'expires_at', ...nullableEpoch },
    finalizingAt: { name: 'finalizing_at', ...nullableEpoch },
    completedAt: { name: 'completed_at', ...nullableEpoch },
    failedAt: { name: 'failed_at', ...nullableEpoch },
    expiredAt: { name: 'expired_at', ...nullableEpoch },
    cancellingAt: { name: 'cancelling_at', ...nullableEpoch },
    cancelledAt: { name: 'cancelled_at', ...nullableEpoch },
    total: { ...counter },
    completed: { ...counter },
    failed: { ...counter },
    ...usageColumns,
    metadata: { type: 'simple-json', nullable: true },
    errors: { type: 'simple-json', nullable: true },
    outputExpiresAfterSeconds: { name: 'output_expires_after_seconds', type: 'integer', nullable: true },
    priority: { type: 'varchar', length: 8, default: 'normal' },
    resultIndex: { name: 'result_index', type: 'simple-json', nullable: true },
  },
  indices: [
    { name: 'idx_batches_owner_created', columns: ['owner', 'createdAt'] },
    { name: 'idx_batches_status', columns: ['status'] },
  ],
});

/** Live progress of one chunk, written by its activity with absolute values so a retry never double counts. */
export interface ChunkProgressRow extends UsageColumns {
  batchId: string;
  chunkIndex: number;
  completed: number;
  failed: number;
  latencyMsSum: number;
  latencyCount: number;
}

export const ChunkProgressEntity = new EntitySchema<ChunkProgressRow>({
  name: 'ChunkProgress',
  tableName: 'batch_chunks',
  columns: {
    batchId: { name: 'batch_id', type: 'varchar', length: 64, primary: true },
    chunkIndex: { name: 'chunk_index', type: 'integer', primary: true },
    completed: { ...counter },
    failed: { ...counter },
    ...usageColumns,
    latencyMsSum: { name: 'latency_ms_sum', ...counter },
    latencyCount: { name: 'latency_count', ...counter },
  },
});

/**
 * An `Idempotency-Key` of one tenant: what the first request with it asked (a hash), and once it succeeded the
 * object it answered, replayed to every later request with the same key for 24 hours.
 */
export interface IdempotencyKeyRow {
  owner: string;
  key: string;
  fingerprint: string;
  state: 'in_flight' | 'done';
  /** The JSON answered, once `done`. */
  response: string | null;
  createdAt: number;
}

export const IdempotencyKeyEntity = new EntitySchema<IdempotencyKeyRow>({
  name: 'IdempotencyKey',
  tableName: 'idempotency_keys',
  columns: {
    owner: { type: 'varchar', length: 64, primary: true },
    key: { name: 'idempotency_key', type: 'varchar', length: 255, primary: true },
    fingerprint: { type: 'varchar', length: 64 },
    state: { type: 'varchar', length: 16 },
    response: { type: 'text', nullable: true },
    createdAt: { name: 'created_at', ...epoch },
  },
  indices: [{ name: 'idx_idempotency_keys_created', columns: ['createdAt'] }],
});

/** A tenant's webhook endpoint. The secret is kept as is: every delivery is signed with it (a shared secret). */
export interface WebhookEndpointRow {
  id: string;
  owner: string;
  url: string;
  events: string[];
  secret: string;
  createdAt: number;
}

export const WebhookEndpointEntity = new EntitySchema<WebhookEndpointRow>({
  name: 'WebhookEndpoint',
  tableName: 'webhook_endpoints',
  columns: {
    id: { type: 'varchar', length: 64, primary: true },
    owner: { type: 'varchar', length: 64 },
    url: { type: 'varchar', length: 2048 },
    events: { type: 'simple-json' },
    secret: { type: 'varchar', length: 128 },
    createdAt: { name: 'created_at', ...epoch },
  },
  indices: [{ name: 'idx_webhook_endpoints_owner_created', columns: ['owner', 'createdAt'] }],
});

/** `pending` until the receiver answers 2xx (`delivered`), 410 (`gone`), or delivery stops for another reason. */
export type WebhookDeliveryState =
  'pending' | 'delivered' | 'gone' | 'endpoint_deleted' | 'refused' | 'failed';

/** One event's delivery to one endpoint: what the dashboard shows. */
export interface WebhookDeliveryRow {
  eventId: string;
  endpointId: string;
  owner: string;
  batchId: string;
  type: string;
  state: WebhookDeliveryState;
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: number;
  lastAttemptAt: number | null;
  deliveredAt: number | null;
}

export const WebhookDeliveryEntity = new EntitySchema<WebhookDeliveryRow>({
  name: 'WebhookDelivery',
  tableName: 'webhook_deliveries',
  columns: {
    eventId: { name: 'event_id', type: 'varchar', length: 64, primary: true },
    endpointId: { name: 'endpoint_id', type: 'varchar', length: 64, primary: true },
    owner: { type: 'varchar', length: 64 },
    batchId: { name: 'batch_id', type: 'varchar', length: 64 },
    type: { type: 'varchar', length: 32 },
    state: { type: 'varchar', length: 16 },
    attempts: { type: 'integer', default: 0 },
    lastStatusCode: { name: 'last_status_code', type: 'integer', nullable: true },
    lastError: { name: 'last_error', type: 'varchar', length: 500, nullable: true },
    createdAt: { name: 'created_at', ...epoch },
    lastAttemptAt: { name: 'last_attempt_at', ...nullableEpoch },
    deliveredAt: { name: 'delivered_at', ...nullableEpoch },
  },
  indices: [
    { name: 'idx_webhook_deliveries_owner_created', columns: ['owner', 'createdAt'] },
    { name: 'idx_webhook_deliveries_created', columns: ['createdAt'] },
  ],
});

/**
 * One worker process's numbers for one upstream pool, upserted every 5 s: the limits live in the workers, the
 * dashboard in the API. `requests` and `latencyMsSum` count attempts from the process's start; the `recent`
 * ones, those since its previous row (rates with no reading kept in the API). Rows not updated for a while belong
 * to processes that are gone.
 */
export interface PoolStatsRow {
  workerId: string;
  pool: string;
  inFlight: number;
  limit: number;
  requests: number;
  latencyMsSum: number;
  recentRequests: number;
  recentLatencyMsSum: number;
  recentMs: number;
  /** Unix milliseconds. */
  updatedAt: number;
}

export const PoolStatsEntity = new EntitySchema<PoolStatsRow>({
  name: 'PoolStats',
  tableName: 'pool_stats',
  columns: {
    workerId: { name: 'worker_id', type: 'varchar', length: 64, primary: true },
    pool: { type: 'varchar', length: 64, primary: true },
    inFlight: { name: 'in_flight', type: 'integer' },
    limit: { name: 'concurrency_limit', type: 'integer' },
    requests: { ...counter },
    latencyMsSum: { name: 'latency_ms_sum', ...counter },
    recentRequests: { name: 'recent_requests', type: 'integer' },
    recentLatencyMsSum: { name: 'recent_latency_ms_sum', ...counter },
    recentMs: { name: 'recent_ms', type: 'integer' },
    updatedAt: { name: 'updated_at', ...epoch },
  },
});

export const ENTITIES = [
  ApiKeyEntity,
  FileEntity,
  BatchEntity,
  ChunkProgressEntity,
  IdempotencyKeyEntity,
  WebhookEndpointEntity,
  WebhookDeliveryEntity,
  PoolStatsEntity,
];
