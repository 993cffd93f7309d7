import { WorkflowExecutionAlreadyStartedError, WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import type { DataSource } from 'typeorm';
import {
  WEBHOOK_WORKFLOW_TYPE,
  webhookWorkflowIdFor,
  type WebhookEventInput,
} from '../contract/webhook-workflow';
import { eventOf, type AnnounceFinal } from './events';
import { subscribers } from './delivery';

/**
 * Starts the event's delivery workflow. Its id is the event's, and a second start is refused (even after the
 * first run closed), so an emitter that repeats itself never sends an event twice.
 */
export async function startWebhookWorkflow(
  client: Client,
  taskQueue: string,
  event: WebhookEventInput,
): Promise<void> {
  try {
    await client.workflow.start(WEBHOOK_WORKFLOW_TYPE, {
      taskQueue,
      workflowId: webhookWorkflowIdFor(event.id),
      args: [event],
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      staticSummary: `Webhook ${event.type} for ${event.batchId}`,
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
}

/**
 * What the status store tells of a final status: the event goes out when the owner has an endpoint that wants
 * it. A failed start fails the status write's caller, whose retry announces again.
 */
export function webhookAnnouncer(
  db: DataSource,
  start: (event: WebhookEventInput) => Promise<void>,
): AnnounceFinal {
  return async (batch) => {
    const event = eventOf(batch);
    if (!event || (await subscribers(db, event.owner, event.type)).length === 0) return;
    await start(event);
  };
}
