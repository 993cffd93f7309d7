import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import type { Config } from '../src/config';

export const cleanupScheduleId = (taskQueue: string) => `besh-cleanup-${taskQueue}`;

/** Creates the cleanup schedule once per task queue; later calls (every worker start) find it and leave it. */
export async function ensureCleanupSchedule(
  client: Client,
  config: Pick<Config, 'taskQueue' | 'cleanupIntervalMinutes'>,
) {
  try {
    await client.schedule.create({
      scheduleId: cleanupScheduleId(config.taskQueue),
      spec: { intervals: [{ every: `${config.cleanupIntervalMinutes} minutes` }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'cleanupWorkflow',
        taskQueue: config.taskQueue,
        args: [],
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
      memo: {
        purpose: 'Deletes expired files and orphaned scratch; the result of each run says what it freed.',
      },
    });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
}
