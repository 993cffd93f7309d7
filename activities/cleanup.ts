import { heartbeat } from '@temporalio/activity';
import fs from 'node:fs';
import { In, LessThanOrEqual, Not } from 'typeorm';
import { BatchEntity, FileEntity } from '../src/db/entities';
import { isTerminal, UNFINISHED_STATUSES } from '../src/batches/lifecycle';
import type { CleanupReport } from '../src/contract/batch-workflow';
import { deleteExpiredIdempotencyKeys } from '../src/services/idempotency';
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

/** Removes part folders of batches that are finished or gone (a crash between finalize and cleanup) and stale temp files. */
export function sweepScratchActivity(deps: ActivityDeps) {
  return async function sweepScratch(): Promise<Pick<CleanupReport, 'orphanedPartDirs' | 'staleTempFiles'>> {
    const dirs = await fs.promises.readdir(deps.partsRoot).catch(() => [] as string[]);
    let orphanedPartDirs = 0;
    for (const batchId of dirs) {
      const stat = await fs.promises.stat(`${deps.partsRoot}/${batchId}`).catch(() => null);
      if (!stat?.isDirectory() || Date.now() - stat.mtimeMs < STALE_MS) continue;
      const batch = await deps.db
        .getRepository(BatchEntity)
        .findOne({ select: { status: true }, where: { id: batchId } });
      if (batch && !isTerminal(batch.status)) continue;
      await fs.promises.rm(`${deps.partsRoot}/${batchId}`, { recursive: true, force: true });
      orphanedPartDirs++;
    }
    const staleTempFiles = await deps.blobs.sweepIncomplete(STALE_MS);
    return { orphanedPartDirs, staleTempFiles };
  };
}
