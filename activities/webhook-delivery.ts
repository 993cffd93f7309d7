import { ApplicationFailure, Context } from '@temporalio/activity';
import type {
  DeliverWebhookInput,
  DeliveryOutcome,
  WebhookEventInput,
} from '../src/contract/webhook-workflow';
import { webhookAnnouncer, startWebhookWorkflow } from '../src/webhooks/announce';
import { DeliveryFailed, deliverOnce, markFailed, planDeliveries } from '../src/webhooks/delivery';
import type { AnnounceFinal } from '../src/webhooks/events';
import type { ActivityDeps } from './deps';

/** For activities that record a final status: starts the event's delivery through the worker's own client. */
export function announceWebhooks(deps: Pick<ActivityDeps, 'db' | 'config'>): AnnounceFinal {
  return webhookAnnouncer(deps.db, (event) =>
    startWebhookWorkflow(Context.current().client, deps.config.taskQueue, event),
  );
}

/** The endpoints the event goes to, each with its delivery row. */
export function planWebhookDeliveriesActivity(deps: Pick<ActivityDeps, 'db'>) {
  return async function planWebhookDeliveries(event: WebhookEventInput): Promise<string[]> {
    return planDeliveries(deps.db, event);
  };
}

/** One attempt; a receiver that did not accept it fails the attempt, and Temporal retries with backoff. */
export function deliverWebhookActivity(deps: Pick<ActivityDeps, 'db' | 'config'>) {
  return async function deliverWebhook(input: DeliverWebhookInput): Promise<DeliveryOutcome> {
    try {
      return await deliverOnce(deps.db, input, {
        allowPrivate: deps.config.webhookAllowPrivate,
        attempt: Context.current().info.attempt,
      });
    } catch (err) {
      if (err instanceof DeliveryFailed) throw ApplicationFailure.retryable(err.message, 'DeliveryFailed');
      throw err;
    }
  };
}

export function markWebhookFailedActivity(deps: Pick<ActivityDeps, 'db'>) {
  return async function markWebhookFailed(input: { eventId: string; endpointId: string }): Promise<void> {
    await markFailed(deps.db, input.eventId, input.endpointId);
  };
}
