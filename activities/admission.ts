import { ApplicationFailure, ApplicationFailureCategory } from '@temporalio/common';
import { BatchEntity } from '../src/db/entities';
import { admitBatch } from '../src/batches/status-store';
import { batchQueueWait } from '../src/metrics/registry';
import type { ActivityDeps } from './deps';

/**
 * Admits a validated batch to `in_progress` when a MAX_CONCURRENT_BATCHES slot is free and no batch before it in
 * the admission order (priority, then deadline, then creation; overdue ones first: see admitBatch) is still
 * waiting. Otherwise it fails retryably: Temporal's retry is the queue, and retries add no history events however
 * long a batch waits. Answers false when the batch stopped waiting (it left `validating` without being admitted),
 * so the workflow runs no chunk.
 */
export function admitBatchActivity(deps: ActivityDeps) {
  return async function admit(input: { batchId: string }): Promise<boolean> {
    const outcome = await admitBatch(deps.db, input.batchId, deps.config.maxConcurrentBatches);
    if (outcome === 'gone') return false;
    if (outcome === 'admitted') {
      const row = await deps.db.getRepository(BatchEntity).findOneBy({ id: input.batchId });
      if (row) batchQueueWait.observe(Date.now() / 1000 - row.createdAt);
      return true;
    }
    throw ApplicationFailure.create({
      type: 'BatchQueued',
      message: `waiting for one of MAX_CONCURRENT_BATCHES=${deps.config.maxConcurrentBatches} slots`,
      nextRetryDelay: '500ms',
      category: ApplicationFailureCategory.BENIGN, // an expected wait, not an error worth a warning
    });
  };
}
