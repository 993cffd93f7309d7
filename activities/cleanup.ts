import { heartbeat } from '@temporalio/activity';
import { In, LessThanOrEqual, Not } from 'typeorm';
import { BatchEntity, FileEntity } from '../src/db/entities';
import { isTerminal, UNFINISHED_STATUSES } from '../src/batches/lifecycle';
import type { CleanupReport } from '../src/contract/batch-workflow';
import { deleteExpiredIdempotencyKeys } from '../src/services/idempotency';
import { deleteBatchSegments } from '../src/results/chunk-segments';
import { deleteOldDeliveries } from '../src/webhooks/delivery';
import type { ActivityDeps } from './deps';
import { reconcileBatches } from './reconcile-batches';

const PAGE = 500;
/** Scratch older than this belongs to no upload or chunk in progress. */
const STALE_MS = 6 * 60 * 60 * 1000;

/**
 * Deletes files past their `expires_at` (rows first, then blobs), except the input of a batch still running.
 * Works in pages so a large backlog never loads at once. Also deletes Idempotency-Keys past their 24 hours:
 * here rather than in an activity of their own, which would change the cleanup workflow's commands. First fails
 * batches whose run has ended (reconcile-batches.ts), which then no longer hold their input.
 */
export function deleteExpiredFilesActivity(deps: ActivityDeps) {
  return async function deleteExpiredFiles(): Promise<Pick<CleanupReport, 'expiredFiles' | 'freedBytes'>> {
    await reconcileBatches(deps);
    await deleteExpiredIdempotencyKeys(deps.db);
    await deleteOldDeliveries(deps.db);
    const files = deps.db.getRepository(FileEntity);
    const now = Math.floor(Date.now() / 1000);
    let expiredFiles = 0;
    let freedBytes = 0;
    let skip = new Set<string>();
    for (;;) {
      const rows = await files.find({
        where: { expiresAt: LessThanOrEqual(now), ...(skip.size ? { id: Not(In([...skip])) } : {}) },
        order: { expiresAt: 'ASC' },
        take: PAGE,
      });
      if (rows.length === 0) break;
      const running = await deps.db.getRepository(BatchEntity).find({
        select: { inputFileId: true },
        where: { inputFileId: In(rows.map((r) => r.id)), status: In(UNFINISHED_STATUSES) },
      });
      const inUse = new Set(running.map((b) => b.inputFileId));
      skip = new Set([...skip, ...inUse]);
      const doomed = rows.filter((r) => !inUse.has(r.id));
      if (doomed.length === 0) break;
      await files.delete(doomed.map((r) => r.id));
      for (const r of doomed) {
        await deps.blobs.delete(r.id);
        freedBytes += r.bytes;
      }
      expiredFiles += doomed.length;
      heartbeat(expiredFiles);
    }
    return { expiredFiles, freedBytes };
  };
}

/**
 * Removes the chunk segments of batches that are finished or gone (a crash between finalize and cleanup) once
 * none was written for STALE_MS, and stale leftovers of interrupted writes in both stores.
 */
export function sweepScratchActivity(deps: ActivityDeps) {
  return async function sweepScratch(): Promise<Pick<CleanupReport, 'orphanedPartDirs' | 'staleTempFiles'>> {
    let orphanedPartDirs = 0;
    for await (const { batchId, newestMs } of batchesWithSegments(deps)) {
      if (Date.now() - newestMs < STALE_MS) continue;
      const batch = await deps.db
        .getRepository(BatchEntity)
        .findOne({ select: { status: true }, where: { id: batchId } });
      if (batch && !isTerminal(batch.status)) continue;
      await deleteBatchSegments(deps.parts, batchId);
      orphanedPartDirs++;
      heartbeat(orphanedPartDirs);
    }
    const staleTempFiles =
      (await deps.blobs.sweepIncomplete(STALE_MS)) + (await deps.parts.sweepIncomplete(STALE_MS));
    return { orphanedPartDirs, staleTempFiles };
  };
}

/** Each batch that has segments, with its newest segment's time; keys sort by batch, so one pass groups them. */
async function* batchesWithSegments(
  deps: ActivityDeps,
): AsyncGenerator<{ batchId: string; newestMs: number }> {
  let current = null as { batchId: string; newestMs: number } | null;
  for await (const { key, modifiedMs } of deps.parts.list('')) {
    const batchId = key.slice(0, key.indexOf('.'));
    if (current?.batchId === batchId) {
      current.newestMs = Math.max(current.newestMs, modifiedMs);
      continue;
    }
    if (current) yield current;
    current = { batchId, newestMs: modifiedMs };
  }
  if (current) yield current;
}
