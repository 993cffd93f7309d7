// No batch can stay unfinished after its run is gone: a run terminated or timed out at the engine, failed in a
// way its workflow could not handle, or never started at all can no longer record a final status, so the batch
// fails here with the reason. Used by BatchService on reads and writes, and by a periodic sweep.
import { In, MoreThan, type DataSource } from 'typeorm';
import { isUnfinished, UNFINISHED_STATUSES } from '../batches/lifecycle';
import { recordStatus } from '../batches/record-status';
import { BatchEntity } from '../db/entities';
import type { BatchError } from '../shared/openai';
import { announceNothing, type AnnounceFinal } from '../webhooks/events';
import type { BatchEngine, ClosedRunStatus, RunState } from './ports';

/**
 * A missing run means a gone one only after any start of it has had its chance: a start answers within
 * TEMPORAL_CALL_TIMEOUT_SECONDS (at most 60 s), or its batch is deleted.
 */
export const START_GRACE_SECONDS = 120;

const PAGE = 200;

const HOW: Record<ClosedRunStatus | 'not_found', string> = {
  COMPLETED: 'ended without recording a final status',
  FAILED: 'failed',
  CANCELLED: 'was cancelled',
  TERMINATED: 'was terminated',
  TIMED_OUT: 'timed out',
  not_found: 'no longer exists',
};

/** The `errors` entry of a batch whose run ended outside its normal path; nothing internal in it. */
export function runEndedError(run: Exclude<RunState, { state: 'running' }>): BatchError {
  const how = HOW[run.state === 'closed' ? run.status : run.state];
  return {
    code: 'batch_failed',
    message: `The batch stopped before it finished: its run ${how}.`,
    param: null,
    line: null,
  };
}

/**
 * Fails the batch when its run has ended and left it unfinished; true if it did. The engine is asked first and
 * the row read after: once a run has closed, its workflow records nothing more.
 */
export async function failIfRunEnded(
  db: DataSource,
  engine: Pick<BatchEngine, 'describe'>,
  batchId: string,
  announce: AnnounceFinal = announceNothing,
): Promise<boolean> {
  const run = await engine.describe(batchId);
  if (run.state === 'running') return false;
  const row = await db
    .getRepository(BatchEntity)
    .findOne({ select: { status: true, createdAt: true }, where: { id: batchId } });
  if (!row || !isUnfinished(row.status)) return false;
  if (run.state === 'not_found' && Date.now() / 1000 - row.createdAt < START_GRACE_SECONDS) return false;
  const errors = [runEndedError(run)];
  return (await recordStatus(db, batchId, 'failed', { errors }, announce)) === 'moved';
}

/** The periodic sweep: every unfinished batch, page by page; returns how many it failed. */
export async function failEndedRuns(
  db: DataSource,
  engine: Pick<BatchEngine, 'describe'>,
  onPage: () => void = () => undefined,
  announce: AnnounceFinal = announceNothing,
): Promise<number> {
  let failed = 0;
  let after = '';
  for (;;) {
    const rows = await db.getRepository(BatchEntity).find({
      select: { id: true },
      where: { status: In(UNFINISHED_STATUSES), id: MoreThan(after) },
      order: { id: 'ASC' },
      take: PAGE,
    });
    if (rows.length === 0) return failed;
    for (const { id } of rows) if (await failIfRunEnded(db, engine, id, announce)) failed++;
    after = rows[rows.length - 1].id;
    onPage();
  }
}
