import type { DataSource, EntityManager } from 'typeorm';
import { In } from 'typeorm';
import { BatchEntity, type BatchRow } from '../db/entities';
import type { BatchError } from '../shared/openai';
import { RUNNING_STATUSES, sourcesOf, STAMP, type BatchStatus } from './lifecycle';

export interface StatusDetails {
  total?: number;
  model?: string;
  errors?: BatchError[];
}

/**
 * `moved`: the batch entered `to` now; `unchanged`: it already was in `to` (a retried write; its details are
 * recorded, its timestamp kept); `refused`: the lifecycle does not allow the move from where it is.
 */
export type MoveOutcome = 'moved' | 'unchanged' | 'refused';

const nowSeconds = () => Math.floor(Date.now() / 1000);

/**
 * Every status write goes through here: one UPDATE guarded by the lifecycle's legal sources of `to`, so two
 * writers racing (a workflow and an API reconciliation, a retried activity) can never make an illegal move.
 */
export async function moveBatch(
  db: DataSource | EntityManager,
  batchId: string,
  to: BatchStatus,
  details: StatusDetails = {},
): Promise<MoveOutcome> {
  const repo = db.getRepository(BatchEntity);
  const patch: Partial<BatchRow> = { ...details, status: to };
  const stamp = STAMP[to];
  if (stamp) patch[stamp] = nowSeconds();
  const sources = sourcesOf(to);
  if (sources.length) {
    const moved = await repo.update({ id: batchId, status: In(sources) }, patch);
    if ((moved.affected ?? 0) > 0) return 'moved';
  }
  const current = await repo.findOne({ select: { status: true }, where: { id: batchId } });
  if (current?.status !== to) return 'refused';
  if (Object.keys(details).length) await repo.update({ id: batchId, status: to }, details);
  return 'unchanged';
}

// Names the PostgreSQL advisory lock that serialises admission across API and worker processes.
const ADMISSION_LOCK = 7461_2027;

export type AdmissionOutcome = 'admitted' | 'queued' | 'gone';

/**
 * How long a validated batch waits before it is overdue. Waiting batches are admitted by priority, then earliest
 * deadline (expires_at), then creation; but an overdue batch goes before every batch that is not, and overdue
 * batches go oldest first. So no batch starves however many higher-priority or earlier-deadline batches keep
 * arriving: after this wait only batches that have waited longer still go before it.
 */
export const ADMISSION_OVERDUE_SECONDS = 3600;

/** A waiting batch's place in the admission order, as a SQL row value of the table alias `b`; lowest goes first. */
const admissionRank = (b: string) => `(
    CASE WHEN ${b}.created_at <= :overdueBefore THEN 0
      WHEN ${b}.priority = 'high' THEN 1 WHEN ${b}.priority = 'low' THEN 3 ELSE 2 END,
    CASE WHEN ${b}.created_at <= :overdueBefore THEN 0 ELSE COALESCE(${b}.expires_at, 0) END,
    ${b}.created_at,
    ${b}.id)`;

/**
 * The batches that share admission slots: those of one upstream pool, named by its models, or (the pool that
 * serves every other model) by the models of the other pools. None: every batch.
 */
export type AdmissionScope = { models: string[] } | { notModels: string[] } | null;

/** The scope as a SQL condition on the table alias `b`, with its parameters. */
function scopeCondition(b: string, scope: AdmissionScope): { sql: string; params: Record<string, string[]> } {
  if (scope && 'models' in scope)
    return { sql: `${b}.model IN (:...scopeModels)`, params: { scopeModels: scope.models } };
  if (scope && scope.notModels.length > 0)
    return { sql: `${b}.model NOT IN (:...scopeNotModels)`, params: { scopeNotModels: scope.notModels } };
  return { sql: '1 = 1', params: {} };
}

/**
 * The guarded variant of `moveBatch(…, 'in_progress')`: admits the batch only while fewer than `maxRunning`
 * batches of its scope (its upstream pool) hold a slot and no batch of that scope before it in the admission order
 * (ADMISSION_OVERDUE_SECONDS) is still waiting. So batches stuck on a stalled pool never hold back another pool's.
 * `gone` means the batch is no longer waiting (cancelled, expired or failed meanwhile) and never will be admitted.
 */
export async function admitBatch(
  db: DataSource,
  batchId: string,
  maxRunning: number,
  scope: AdmissionScope = null,
): Promise<AdmissionOutcome> {
  const running = scopeCondition('r', scope);
  const waiting = scopeCondition('w', scope);
  const admitted = await db.transaction(async (tx: EntityManager) => {
    if (tx.connection.options.type === 'postgres') {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [ADMISSION_LOCK]);
    }
    // One UPDATE so that on SQLite, where writers are serialised, the check and the admission are atomic too.
    const result = await tx
      .createQueryBuilder()
      .update(BatchEntity)
      .set({ status: 'in_progress', [STAMP.in_progress]: nowSeconds() })
      .where('id = :id AND status IN (:...sources)', { id: batchId, sources: sourcesOf('in_progress') })
      .andWhere(
        `(SELECT COUNT(*) FROM batches r WHERE r.in_progress_at IS NOT NULL AND r.status IN (:...running)
           AND ${running.sql}) < :max`,
        { running: RUNNING_STATUSES, max: maxRunning, ...running.params },
      )
      .andWhere(
        `NOT EXISTS (SELECT 1 FROM batches w, batches me WHERE me.id = :id AND w.status IN (:...sources) AND w.total > 0
           AND ${waiting.sql} AND ${admissionRank('w')} < ${admissionRank('me')})`,
        { overdueBefore: nowSeconds() - ADMISSION_OVERDUE_SECONDS, ...waiting.params },
      )
      .execute();
    return (result.affected ?? 0) > 0;
  });
  if (admitted) return 'admitted';
  const row = await db
    .getRepository(BatchEntity)
    .findOne({ select: { status: true }, where: { id: batchId } });
  // Only the batch's own workflow admits it: `in_progress` here is an earlier attempt of this call that committed.
  if (row?.status === 'in_progress') return 'admitted';
  return row && sourcesOf('in_progress').includes(row.status) ? 'queued' : 'gone';
}
