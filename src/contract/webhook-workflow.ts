// The contract between the webhook workflow, its activities and whoever starts it. A leaf module: imported by
// workflow code, so no Node built-ins here.

/** The batch events an endpoint can subscribe to, as OpenAI names them. */
export const WEBHOOK_EVENT_TYPES = [
  'batch.completed',
  'batch.failed',
  'batch.expired',
  'batch.cancelled',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export const WEBHOOK_WORKFLOW_TYPE = 'webhookWorkflow';

/** One workflow per event, its id derived from the event id: a repeated start is refused, so nothing sends twice. */
export const webhookWorkflowIdFor = (eventId: string) => `webhook-${eventId}`;

/** An event as the workflow carries it; its id and time never change, so receivers can deduplicate. */
export interface WebhookEventInput {
  /** `evt_…`, derived from the batch and the event type. */
  id: string;
  type: WebhookEventType;
  /** Unix seconds: when the batch entered its final status. */
  createdAt: number;
  batchId: string;
  owner: string;
}

export interface DeliverWebhookInput {
  event: WebhookEventInput;
  endpointId: string;
}

/**
 * `delivered`: a 2xx; `gone`: the receiver answered 410 (it wants no more); `endpoint_deleted`: the endpoint
 * went before delivery; `refused`: its address is not allowed (private, or no longer resolves).
 */
export type DeliveryOutcome = 'delivered' | 'gone' | 'endpoint_deleted' | 'refused';

/** Delivery retries with exponential backoff (5 s, 10 s, 20 s … at most 1 h apart) for up to 24 hours. */
export const DELIVERY_RETRY = {
  initialInterval: '5 seconds',
  backoffCoefficient: 2,
  maximumInterval: '1 hour',
  total: '24 hours',
} as const;
