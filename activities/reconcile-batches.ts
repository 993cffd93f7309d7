import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { workflowIdFor } from '../src/contract/batch-workflow';
import { CLOSED_RUN_STATUSES, type RunState } from '../src/services/ports';
import { failEndedRuns } from '../src/services/reconcile';
import { announceMissed } from '../src/webhooks/announce';
import type { ActivityDeps } from './deps';
import { announceWebhooks } from './webhook-delivery';

/** Where a batch's run is, as Temporal tells it; the API's engine and the sweep below both ask this way. */
export async function describeBatchRun(client: Client, batchId: string): Promise<RunState> {
  try {
    const { status } = await client.workflow.getHandle(workflowIdFor(batchId)).describe();
    const closed = CLOSED_RUN_STATUSES.find((s) => s === status.name);
    return closed ? { state: 'closed', status: closed } : { state: 'running' };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return { state: 'not_found' };
    throw err;
  }
}

/**
 * The periodic side of reconciliation, run by the cleanup workflow's first activity: fails every unfinished batch
 * whose run has ended, so the dashboard stops counting it and its input file can go, even if nobody reads the
 * batch, then announces the webhook events a stopped process may have missed. Asks Temporal through the worker's
 * own client; returns how many batches it failed.
 */
export async function reconcileBatches(deps: Pick<ActivityDeps, 'db' | 'config'>): Promise<number> {
  const ctx = Context.current();
  const announce = announceWebhooks(deps);
  const failed = await failEndedRuns(
    deps.db,
    { describe: (id) => describeBatchRun(ctx.client, id) },
    () => ctx.heartbeat(),
    announce,
  );
  // Two sweep periods back, so a batch that ended just before the last sweep is looked at once more.
  await announceMissed(deps.db, 2 * deps.config.cleanupIntervalMinutes * 60, announce);
  return failed;
}
