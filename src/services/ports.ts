// What the services need from outside, as small ports the composition root fills in. The database is TypeORM's
// DataSource and file contents a BlobStore (src/storage/blob-store.ts); the workflow engine is this interface,
// implemented over Temporal in temporal/client.ts and by a fake in unit tests.
import type { BatchWorkflowInput } from '../contract/batch-workflow';
import { Refused } from './errors';

/** How a run closed, as Temporal names it. */
export const CLOSED_RUN_STATUSES = ['COMPLETED', 'FAILED', 'CANCELLED', 'TERMINATED', 'TIMED_OUT'] as const;
export type ClosedRunStatus = (typeof CLOSED_RUN_STATUSES)[number];

/** Where a batch's run is: still open, closed (and how), or unknown to the engine (never started, or gone). */
export type RunState =
  { state: 'running' } | { state: 'closed'; status: ClosedRunStatus } | { state: 'not_found' };

/**
 * Every engine call has a deadline; past it the call rejects with this refusal, which clients get as a 503 to
 * retry. The call may still take effect later at the engine: the services make that harmless.
 */
export class EngineUnavailable extends Refused {
  constructor() {
    super('retry_later', 'The batch engine did not answer in time; please retry.', 'service_unavailable');
  }
}

export interface BatchEngine {
  /** Starts the batch's run; rejects when the engine refuses it (then nothing was started). */
  start(input: BatchWorkflowInput): Promise<void>;
  /**
   * Ends a run whose start answered too late: the run may have started after all. Best-effort: never rejects.
   */
  abandon(batchId: string): Promise<void>;
  /**
   * Asks the run to cancel: true once it has recorded `cancelling`, false when it refuses (the batch finished
   * or is finalizing) or has already closed.
   */
  cancel(batchId: string): Promise<boolean>;
  /** Whether the batch's run is still open, and how it closed if not. */
  describe(batchId: string): Promise<RunState>;
  /** True once the run has closed, whatever its outcome; false if it is still open after `timeoutMs`. */
  waitUntilClosed(batchId: string, timeoutMs: number): Promise<boolean>;
  /** Resolves when the engine answers; for health checks. */
  ping(): Promise<void>;
}
