import { recordStatus } from '../src/batches/record-status';
import type { MoveOutcome } from '../src/batches/status-store';
import type { SetStatusInput } from '../src/contract/batch-workflow';
import type { ActivityDeps } from './deps';
import { announceWebhooks } from './webhook-delivery';

/**
 * Records a status the workflow entered (through the lifecycle's guarded write), and counts a final status
 * once in the owner's stats however often a retry repeats this.
 */
export function setStatusActivity(deps: ActivityDeps) {
  return async function setStatus(input: SetStatusInput): Promise<MoveOutcome> {
    const { batchId, status, ...details } = input;
    return recordStatus(deps.db, batchId, status, details, announceWebhooks(deps));
  };
}
