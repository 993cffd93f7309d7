import type { DataSource } from 'typeorm';
import { BatchEntity } from '../db/entities';
import { batchesFinished } from '../metrics/registry';
import { recordOnce } from '../stats/record';
import type { AnnounceFinal } from '../webhooks/events';
import { isTerminal, STAMP, type BatchStatus } from './lifecycle';
import { moveBatch, type MoveOutcome, type StatusDetails } from './status-store';

/**
 * A status write by whoever ends a batch (its workflow, or the API reconciling a batch whose run is gone): the
 * status store's guarded move, and a final status counted once in the owner's stats however often the write is
 * repeated. A final status is also announced (webhooks) on every repeat: a repeat may follow an announcement
 * that failed, and the announcement is idempotent.
 */
export async function recordStatus(
  db: DataSource,
  batchId: string,
  to: BatchStatus,
  details: StatusDetails,
  announce: AnnounceFinal,
): Promise<MoveOutcome> {
  const outcome = await moveBatch(db, batchId, to, details);
  if (outcome === 'refused' || !isTerminal(to)) return outcome;
  const row = await db.getRepository(BatchEntity).findOneBy({ id: batchId });
  if (!row) return outcome; // deleted meanwhile: nothing left to count
  const now = Math.floor(Date.now() / 1000);
  // The ledger makes this count once even when the write is repeated after the move committed.
  await recordOnce(db, `final:${batchId}`, row.owner, now, {
    [`batches_${to}`]: 1,
    batch_duration_sum: now - row.createdAt,
  });
  if (outcome === 'moved') batchesFinished.inc({ status: to });
  const stamp = STAMP[to];
  await announce({ batchId, owner: row.owner, status: to, at: (stamp && row[stamp]) || now });
  return outcome;
}
