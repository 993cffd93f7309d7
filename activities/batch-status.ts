import { In, Not } from 'typeorm';
import { BatchEntity, type BatchRow } from '../src/db/entities';
import { TERMINAL_STATUSES, type BatchError, type BatchStatus } from '../src/shared/openai';
import { batchesFinished } from '../src/metrics/registry';
import { recordOnce } from '../src/stats/record';
import type { ActivityDeps } from './deps';

export interface SetStatusInput {
  batchId: string;
  status: BatchStatus;
  total?: number;
  model?: string;
  errors?: BatchError[];
}

const STAMP: Partial<Record<BatchStatus, keyof BatchRow>> = {
  in_progress: 'inProgressAt',
  finalizing: 'finalizingAt',
  completed: 'completedAt',
  failed: 'failedAt',
  expired: 'expiredAt',
  cancelling: 'cancellingAt',
  cancelled: 'cancelledAt',
};

/** Records a phase change. Idempotent, and a finished batch is never moved again. */
export function setStatusActivity(deps: ActivityDeps) {
  return async function setStatus(input: SetStatusInput): Promise<void> {
    const patch: Partial<BatchRow> = { status: input.status };
    const stamp = STAMP[input.status];
    if (stamp) (patch as Record<string, unknown>)[stamp] = Math.floor(Date.now() / 1000);
    if (input.total !== undefined) patch.total = input.total;
    if (input.model !== undefined) patch.model = input.model;
    if (input.errors !== undefined) patch.errors = input.errors;
    const repo = deps.db.getRepository(BatchEntity);
    // The timestamp is kept from the first write when an activity retry repeats this one.
    const current = await repo.findOneBy({ id: input.batchId });
    if (!current || TERMINAL_STATUSES.includes(current.status)) return;
    if (stamp && current.status === input.status && current[stamp] !== null) delete patch[stamp];
    const moved = await repo.update({ id: input.batchId, status: Not(In([...TERMINAL_STATUSES])) }, patch);
    if (TERMINAL_STATUSES.includes(input.status)) {
      const now = Math.floor(Date.now() / 1000);
      // The ledger makes this count once even when the activity is retried after the update above committed.
      await recordOnce(deps.db, `final:${input.batchId}`, current.owner, now, {
        [`batches_${input.status}`]: 1,
        batch_duration_sum: now - current.createdAt,
      });
      if ((moved.affected ?? 0) > 0) batchesFinished.inc({ status: input.status });
    }
  };
}
