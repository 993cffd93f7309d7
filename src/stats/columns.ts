/** The counters of a 15-minute stats bucket, as columns of `stats_buckets`. */
export const STAT_COLUMNS = [
  'requests_succeeded',
  'requests_failed',
  'input_tokens',
  'output_tokens',
  'batches_created',
  'batches_completed',
  'batches_failed',
  'batches_cancelled',
  'batches_expired',
  'batch_duration_sum',
  'uploads',
  'upload_bytes',
  'latency_ms_sum',
  'latency_count',
] as const;

export type StatColumn = (typeof STAT_COLUMNS)[number];
export type StatsDelta = Partial<Record<StatColumn, number>>;

export const BUCKET_SECONDS = 900;
export const bucketOf = (unixSeconds: number) => unixSeconds - (unixSeconds % BUCKET_SECONDS);
