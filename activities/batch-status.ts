import { BatchEntity } from '../src/db/entities';
import { isTerminal } from '../src/batches/lifecycle';
import { moveBatch, type MoveOutcome } from '../src/batches/status-store';
import type { SetStatusInput } from '../src/contract/batch-workflow';
import { batchesFinished } from '../src/metrics/registry';
import { recordOnce } from '../src/stats/record';
import type { ActivityDeps } from './deps';

/**
 * Records a status the workflow entered (through the lifecycle's guarded write), and counts a final status
 * once in the owner's stats however often a retry repeats this.
 */
export function setStatusActivity(deps: ActivityDeps) {
  return async function setStatus(input: SetStatusInput): Promise<MoveOutcome> {
    const { batchId, status, ...details } = input;
    const outcome = await moveBatch(deps.db, batchId, status, details);
    if (outcome !== 'refused' && isTerminal(status)) {
      const row = await deps.db.getRepository(BatchEntity).findOneByOrFail({ id: batchId });
      const now = Math.floor(Date.now() / 1000);
      // The ledger makes this count once even when the activity is retried after the move committed.
      await recordOnce(deps.db, `final:${batchId}`, row.owner, now, {
        [`batches_${status}`]: 1,
        batch_duration_sum: now - row.createdAt,
      });
      if (outcome === 'moved') batchesFinished.inc({ status });
    }
    return outcome;
  };
}
