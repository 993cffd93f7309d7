import { admitBatchActivity } from './admission';
import { setStatusActivity } from './batch-status';
import type { ActivityDeps } from './deps';
import { deleteExpiredFilesActivity, sweepScratchActivity } from './cleanup';
import { cleanupBatchActivity, finalizeBatchActivity } from './finalize';
import { processChunkActivity } from './process-chunk';
import { validateInputActivity } from './validate-input';
import {
  deliverWebhookActivity,
  markWebhookFailedActivity,
  planWebhookDeliveriesActivity,
} from './webhook-delivery';

/** Builds every activity from the worker's dependencies; workflows see only the type of this object. */
export function createActivities(deps: ActivityDeps) {
  return {
    validateInput: validateInputActivity(deps),
    admitBatch: admitBatchActivity(deps),
    setStatus: setStatusActivity(deps),
    processChunk: processChunkActivity(deps),
    finalizeBatch: finalizeBatchActivity(deps),
    cleanupBatch: cleanupBatchActivity(deps),
    deleteExpiredFiles: deleteExpiredFilesActivity(deps),
    sweepScratch: sweepScratchActivity(deps),
    planWebhookDeliveries: planWebhookDeliveriesActivity(deps),
    deliverWebhook: deliverWebhookActivity(deps),
    markWebhookFailed: markWebhookFailedActivity(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
