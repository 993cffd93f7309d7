import { ActivityFailure, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { DELIVERY_RETRY, type WebhookEventInput } from '../src/contract/webhook-workflow';

const { planWebhookDeliveries, markWebhookFailed } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});

// An attempt waits at most 15 s for the receiver; retries go on, with backoff, until 24 h after the first.
const { deliverWebhook } = proxyActivities<Activities>({
  startToCloseTimeout: '20 seconds',
  scheduleToCloseTimeout: DELIVERY_RETRY.total,
  retry: {
    initialInterval: DELIVERY_RETRY.initialInterval,
    backoffCoefficient: DELIVERY_RETRY.backoffCoefficient,
    maximumInterval: DELIVERY_RETRY.maximumInterval,
  },
});

/** Delivers one batch event to every endpoint of its owner that wants it, each on its own retry schedule. */
export async function webhookWorkflow(event: WebhookEventInput): Promise<void> {
  const endpointIds = await planWebhookDeliveries(event);
  await Promise.all(
    endpointIds.map(async (endpointId) => {
      try {
        await deliverWebhook({ event, endpointId });
      } catch (err) {
        // Retries ran out (24 h): the delivery is failed; the other endpoints are not held back.
        if (!(err instanceof ActivityFailure)) throw err;
        await markWebhookFailed({ eventId: event.id, endpointId });
      }
    }),
  );
}
