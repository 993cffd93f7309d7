import { ApplicationFailure, ApplicationFailureCategory } from '@temporalio/common';
import type { EntityManager } from 'typeorm';
import { BatchEntity } from '../src/db/entities';
import { batchQueueWait } from '../src/metrics/registry';
import type { ActivityDeps } from './deps';

// Names the PostgreSQL advisory lock that serialises admission across API and worker processes.
const ADMISSION_LOCK = 7461_2027;

/**
 * Admits a validated batch to `in_progress` when fewer than MAX_CONCURRENT_BATCHES run and no batch created
 * before it is still waiting. Otherwise it fails retryably: Temporal's retry is the queue, and retries add no
 * history events however long a batch waits.
 */
export function admitBatchActivity(deps: ActivityDeps) {
  return async function admitBatch(input: { batchId: string }): Promise<void> {
    const admitted = await deps.db.transaction(async (tx: EntityManager) => {
      if (tx.connection.options.type === 'postgres') {
        await tx.query('SELECT pg_advisory_xact_lock($1)', [ADMISSION_LOCK]);
      }
      const now = Math.floor(Date.now() / 1000);
      // One UPDATE so that on SQLite, where writers are serialised, the check and the admission are atomic too.
      const result = await tx
        .createQueryBuilder()
        .update(BatchEntity)
        .set({ status: 'in_progress', inProgressAt: now })
        .where('id = :id AND status = :validating', { id: input.batchId, validating: 'validating' })
        .andWhere(
          `(SELECT COUNT(*) FROM batches r WHERE r.in_progress_at IS NOT NULL AND r.status IN ('in_progress','finalizing','cancelling')) < :max`,
          { max: deps.config.maxConcurrentBatches },
        )
        .andWhere(
          `NOT EXISTS (SELECT 1 FROM batches w, batches me WHERE me.id = :id AND w.status = 'validating' AND w.total > 0
             AND (w.created_at < me.created_at OR (w.created_at = me.created_at AND w.id < me.id)))`,
        )
        .execute();
      return (result.affected ?? 0) > 0;
    });
    if (admitted) {
      const row = await deps.db.getRepository(BatchEntity).findOneBy({ id: input.batchId });
      if (row) batchQueueWait.observe(Date.now() / 1000 - row.createdAt);
      return;
    }
    const row = await deps.db
      .getRepository(BatchEntity)
      .findOne({ select: { status: true }, where: { id: input.batchId } });
    if (row?.status !== 'validating') return; // cancelled while waiting: nothing to admit
    throw ApplicationFailure.create({
      type: 'BatchQueued',
      message: `waiting for one of MAX_CONCURRENT_BATCHES=${deps.config.maxConcurrentBatches} slots`,
      nextRetryDelay: '500ms',
      category: ApplicationFailureCategory.BENIGN, // an expected wait, not an error worth a warning
    });
  };
}
