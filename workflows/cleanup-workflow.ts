import { log, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { CleanupReport } from '../src/contract/batch-workflow';

const { deleteExpiredFiles, sweepScratch } = proxyActivities<Activities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '5s', maximumInterval: '5 minutes', maximumAttempts: 10 },
});

/** Housekeeping run by a Temporal Schedule: expired files and their blobs, orphaned scratch. Returns what it freed. */
export async function cleanupWorkflow(): Promise<CleanupReport> {
  const files = await deleteExpiredFiles();
  const scratch = await sweepScratch();
  const report = { ...files, ...scratch };
  log.info('cleanup finished', { ...report });
  return report;
}
