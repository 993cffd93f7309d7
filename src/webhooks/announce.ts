import { WorkflowExecutionAlreadyStartedError, WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import type { DataSource } from 'typeorm';
import { STAMP, TERMINAL_STATUSES } from '../batches/lifecycle';
import { BatchEntity, WebhookDeliveryEntity } from '../db/entities';
import {
  WEBHOOK_WORKFLOW_TYPE,
  webhookWorkflowIdFor,
  type WebhookEventInput,
} from '../contract/webhook-workflow';
import { eventOf, type AnnounceFinal, type FinalBatch } from './events';
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

/**
 * Announces again each batch that ended in the last `withinSeconds`, whose owner has an endpoint, and whose event
 * has no delivery yet: a process that stopped between a final status and its announcement (the API's, which
 * nothing retries) loses no event. The event's fixed workflow id makes a repeated start harmless. Returns how many.
 */
export async function announceMissed(
  db: DataSource,
  withinSeconds: number,
  announce: AnnounceFinal,
): Promise<number> {
  const since = Math.floor(Date.now() / 1000) - withinSeconds;
  const rows = await db
    .getRepository(BatchEntity)
    .createQueryBuilder('b')
    .where('b.status IN (:...final)', { final: TERMINAL_STATUSES })
    .andWhere('COALESCE(b.completed_at, b.failed_at, b.expired_at, b.cancelled_at) >= :since', { since })
    .andWhere('EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.owner = b.owner)')
    .getMany();
  let announced = 0;
  for (const row of rows) {
    const stamp = STAMP[row.status];
    const batch: FinalBatch = {
      batchId: row.id,
      owner: row.owner,
      status: row.status,
      at: (stamp && row[stamp]) || since,
    };
    const event = eventOf(batch);
    if (!event) continue;
    if (await db.getRepository(WebhookDeliveryEntity).exists({ where: { eventId: event.id } })) continue;
    await announce(batch);
    announced++;
  }
  return announced;
}
