import type { Readable } from 'node:stream';

/**
 * Where file contents live. Keys are opaque ids (validated by the caller and again by the store).
 * Two implementations: files under a folder (local-blob-store.ts) and an S3-compatible bucket (s3-blob-store.ts).
 */
export interface BlobStore {
  /** Streams `source` into the blob; the key becomes visible only once the whole stream is stored. */
  put(key: string, source: Readable): Promise<{ bytes: number }>;
  /** Streams the blob, or the byte range [start, end) of it. Rejects with BlobNotFoundError. */
  get(key: string, range?: { start: number; end: number }): Promise<Readable>;
  /** Size in bytes, or null when there is no such blob. */
  size(key: string): Promise<number | null>;
  /** Idempotent. */
  delete(key: string): Promise<void>;
  /** Every blob whose key starts with `prefix`, in ascending key order. */
  list(prefix: string): AsyncIterable<BlobListing>;
  /** Deletes every blob whose key starts with `prefix` (many per request where the store allows); how many. */
  deletePrefix(prefix: string): Promise<number>;
  /** Rejects when the store cannot be used (its folder or bucket missing, or unreachable): for /health. */
  ping(): Promise<void>;
  /** Removes what writes interrupted by a crash left behind, if older than `olderThanMs`; returns how many. */
  sweepIncomplete(olderThanMs: number): Promise<number>;
}

export interface BlobListing {
  key: string;
  bytes: number;
  /** Last write, in ms since the epoch. */
  modifiedMs: number;
}

export class BlobNotFoundError extends Error {
  constructor(key: string) {
    super(`blob not found: ${key}`);
  }
}

const SAFE_KEY = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function assertSafeKey(key: string): void {
  if (!SAFE_KEY.test(key) || key.includes('..')) throw new Error('unsafe blob key');
}
