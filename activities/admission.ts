import { ApplicationFailure, ApplicationFailureCategory } from '@temporalio/common';
import { BatchEntity } from '../src/db/entities';
import { admitBatch, type AdmissionScope } from '../src/batches/status-store';
import { poolServing, type PoolConfig } from '../src/config';
import { batchQueueWait } from '../src/metrics/registry';
import type { ActivityDeps } from './deps';

/**
 * The batches that share admission slots with a batch of `model`: its pool's (every batch with one pool). A model
 * no pool serves never gets this far (validation fails its batch).
 */
export function admissionScope(pools: readonly PoolConfig[], model: string | null): AdmissionScope {
  const pool = model === null || pools.length < 2 ? undefined : poolServing(pools, model);
  if (!pool) return null;
  if (pool.models.length > 0) return { models: pool.models };
  return { notModels: pools.flatMap((p) => p.models) };
}

/**
 * Admits a validated batch to `in_progress` when one of its pool's MAX_CONCURRENT_BATCHES slots is free and no batch before it in
 * the admission order (priority, then deadline, then creation; overdue ones first: see admitBatch) is still
 * waiting. Otherwise it fails retryably: Temporal's retry is the queue, and retries add no history events however
 * long a batch waits. Answers false when the batch stopped waiting (it left `validating` without being admitted),
 * so the workflow runs no chunk.
 */
export function admitBatchActivity(deps: ActivityDeps) {
  return async function admit(input: { batchId: string }): Promise<boolean> {
    const batch = await deps.db
      .getRepository(BatchEntity)
      .findOne({ select: { model: true, createdAt: true }, where: { id: input.batchId } });
    const scope = admissionScope(deps.config.pools, batch?.model ?? null);
    const outcome = await admitBatch(deps.db, input.batchId, deps.config.maxConcurrentBatches, scope);
    if (outcome === 'gone') return false;
    if (outcome === 'admitted') {
      if (batch) batchQueueWait.observe(Date.now() / 1000 - batch.createdAt);
      return true;
    }
    throw ApplicationFailure.create({
      type: 'BatchQueued',
      message: `waiting for one of its pool's MAX_CONCURRENT_BATCHES=${deps.config.maxConcurrentBatches} slots`,
      nextRetryDelay: '500ms',
      category: ApplicationFailureCategory.BENIGN, // an expected wait, not an error worth a warning
    });
  };
}
