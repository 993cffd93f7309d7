import { createHash } from 'node:crypto';
import type { BatchStatus } from '../batches/lifecycle';
import {
  WEBHOOK_EVENT_TYPES,
  type WebhookEventInput,
  type WebhookEventType,
} from '../contract/webhook-workflow';

/** A batch that reached a final status, as the status store tells it. */
export interface FinalBatch {
  batchId: string;
  owner: string;
  status: BatchStatus;
  /** Unix seconds: when it entered the status. */
  at: number;
}

/** Told of every final status, however often a write is repeated; must itself be idempotent. */
export type AnnounceFinal = (batch: FinalBatch) => Promise<void>;

export const announceNothing: AnnounceFinal = () => Promise.resolve();

export const isWebhookEventType = (v: unknown): v is WebhookEventType =>
  (WEBHOOK_EVENT_TYPES as readonly unknown[]).includes(v);

/** The event of a final status; its id depends only on the batch and the type, so every emitter agrees. */
export function eventOf({ batchId, owner, status, at }: FinalBatch): WebhookEventInput | null {
  const type = `batch.${status}`;
  if (!isWebhookEventType(type)) return null;
  const id = `evt_${createHash('sha256').update(`${batchId}:${type}`).digest('hex').slice(0, 32)}`;
  return { id, type, createdAt: at, batchId, owner };
}

/** The body OpenAI sends for a batch event. */
export const eventPayload = (e: WebhookEventInput) =>
  JSON.stringify({
    id: e.id,
    object: 'event',
    type: e.type,
    created_at: e.createdAt,
    data: { id: e.batchId },
  });
