// What the services need from outside, as small ports the composition root fills in. The database is TypeORM's
// DataSource and file contents a BlobStore (src/storage/blob-store.ts); the workflow engine is this interface,
// implemented over Temporal in temporal/client.ts and by a fake in unit tests.
import type { BatchWorkflowInput } from '../contract/batch-workflow';

export interface BatchEngine {
  /** Starts the batch's run; rejects when the engine refuses it (then nothing was started). */
  start(input: BatchWorkflowInput): Promise<void>;
  /**
   * Asks the run to cancel: true once it has recorded `cancelling`, false when it refuses (the batch finished
   * or is finalizing) or has already closed.
   */
  cancel(batchId: string): Promise<boolean>;
  /** True once the run has closed, whatever its outcome; false if it is still open after `timeoutMs`. */
  waitUntilClosed(batchId: string, timeoutMs: number): Promise<boolean>;
  /** Resolves when the engine answers; for health checks. */
  ping(): Promise<void>;
}
