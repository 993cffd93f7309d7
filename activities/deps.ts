import type { DataSource } from 'typeorm';
import type { Config } from '../src/config';
import type { BlobStore } from '../src/storage/blob-store';
import type { BatchStops } from './batch-stops';
import type { UpstreamPools } from './upstream-pools';

/** What the activities need from the process that hosts them; built once per worker. */
export interface ActivityDeps {
  config: Config;
  db: DataSource;
  blobs: BlobStore;
  /** Where chunks store their finished lines (chunk-segments.ts): a folder, or a bucket every worker host reaches. */
  parts: BlobStore;
  /** The upstream pools, each with its own limit and fair share; a chunk uses the pool of its batch's model. */
  pools: Pick<UpstreamPools, 'forModel' | 'get'>;
  /** Aborted when the worker begins to shut down: chunks stop starting requests and hand over the rest. */
  draining: AbortSignal;
  /** Tells chunks at once that their batch was cancelled, before Temporal's cancellation reaches them. */
  stops: BatchStops;
}
