import { Agent, request, type Dispatcher } from 'undici';
import { LessThan, type DataSource } from 'typeorm';
import { WebhookDeliveryEntity, WebhookEndpointEntity, type WebhookDeliveryRow } from '../db/entities';
import type {
  DeliverWebhookInput,
  DeliveryOutcome,
  WebhookEventInput,
  WebhookEventType,
} from '../contract/webhook-workflow';
import { eventPayload } from './events';
import { signatureHeaders } from './signing';
import { guardedLookup, parseWebhookUrl } from './url-policy';

/** A receiver must have answered (and been read) within this; Standard Webhooks suggests a fast 2xx. */
export const DELIVERY_TIMEOUT_MS = 15_000;
/** Only the status matters; at most this much of an answer is read. */
const MAX_ANSWER_BYTES = 64 * 1024;

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** Endpoints of `owner` subscribed to `type`. Few per owner, so the filter on the JSON list runs here. */
export async function subscribers(db: DataSource, owner: string, type: WebhookEventType): Promise<string[]> {
  const rows = await db
    .getRepository(WebhookEndpointEntity)
    .find({ select: { id: true, events: true }, where: { owner }, order: { id: 'ASC' } });
  return rows.filter((r) => r.events.includes(type)).map((r) => r.id);
}

/** One delivery row per subscribed endpoint (a retried call keeps the rows it made); their endpoint ids. */
export async function planDeliveries(db: DataSource, event: WebhookEventInput): Promise<string[]> {
  const endpointIds = await subscribers(db, event.owner, event.type);
  if (endpointIds.length === 0) return [];
  const rows: WebhookDeliveryRow[] = endpointIds.map((endpointId) => ({
    eventId: event.id,
    endpointId,
    owner: event.owner,
    batchId: event.batchId,
    type: event.type,
    state: 'pending',
    attempts: 0,
    lastStatusCode: null,
    lastError: null,
    createdAt: nowSeconds(),
    lastAttemptAt: null,
    deliveredAt: null,
  }));
  await db.createQueryBuilder().insert().into(WebhookDeliveryEntity).values(rows).orIgnore().execute();
  return endpointIds;
}

/** A delivery attempt the receiver did not accept: retried with backoff. */
export class DeliveryFailed extends Error {
  override readonly name = 'DeliveryFailed';
}

/** Connections for deliveries: every name resolved through the private-address guard, none kept open. */
const guardedAgent = new Agent({ connect: { lookup: guardedLookup } });
const openAgent = new Agent();

/** The network error's own cause (`ECONNREFUSED`, the guard's refusal), short and without paths. */
function describeError(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  const code = (e as { code?: string }).code;
  const message = e instanceof Error ? e.message : String(e);
  return (code && !message.includes(code) ? `${code}: ${message}` : message).slice(0, 500);
}

/**
 * One attempt to deliver `event` to an endpoint, signed afresh (the timestamp is the attempt's); its outcome is
 * recorded on the delivery row. Throws DeliveryFailed when it should be tried again.
 */
export async function deliverOnce(
  db: DataSource,
  { event, endpointId }: DeliverWebhookInput,
  opts: { allowPrivate: boolean; attempt: number },
): Promise<DeliveryOutcome> {
  const deliveries = db.getRepository(WebhookDeliveryEntity);
  const key = { eventId: event.id, endpointId };
  const record = (patch: Partial<WebhookDeliveryRow>) =>
    deliveries.update(key, { attempts: opts.attempt, lastAttemptAt: nowSeconds(), ...patch });
  const endpoint = await db.getRepository(WebhookEndpointEntity).findOneBy({ id: endpointId });
  if (!endpoint) {
    await deliveries.update(key, { state: 'endpoint_deleted' });
    return 'endpoint_deleted';
  }
  let url: URL;
  try {
    url = parseWebhookUrl(endpoint.url, opts.allowPrivate);
  } catch (err) {
    await record({ state: 'refused', lastError: (err as Error).message.slice(0, 500) });
    return 'refused';
  }
  const body = eventPayload(event);
  let status: number;
  try {
    const answer = await request(url, {
      method: 'POST',
      body,
      headers: {
        'content-type': 'application/json',
        'user-agent': 'BESH-Webhooks/1',
        ...signatureHeaders(endpoint.secret, event.id, body),
      },
      dispatcher: (opts.allowPrivate ? openAgent : guardedAgent) as Dispatcher,
      reset: true,
      // The whole attempt, connection to the last byte read: a receiver that trickles its answer cannot hold a
      // worker's activity slot past the attempt's own timeout, and be sent the event again meanwhile.
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    status = answer.statusCode;
    await drain(answer.body);
  } catch (err) {
    const lastError = describeError(err);
    if ((err as { code?: string }).code === 'EPRIVATETARGET' || lastError.startsWith('EPRIVATETARGET')) {
      await record({ state: 'refused', lastStatusCode: null, lastError });
      return 'refused';
    }
    await record({ lastStatusCode: null, lastError });
    throw new DeliveryFailed(lastError);
  }
  if (status >= 200 && status < 300) {
    await record({ state: 'delivered', lastStatusCode: status, lastError: null, deliveredAt: nowSeconds() });
    return 'delivered';
  }
  if (status === 410) {
    await record({ state: 'gone', lastStatusCode: status, lastError: null });
    return 'gone';
  }
  await record({ lastStatusCode: status, lastError: `HTTP ${status}` });
  throw new DeliveryFailed(`the receiver answered HTTP ${status}`);
}

async function drain(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<void> {
  let read = 0;
  for await (const piece of body) {
    read += piece.length;
    if (read > MAX_ANSWER_BYTES) return body.destroy();
  }
}

/** A delivery that was not accepted within the retry period. */
export async function markFailed(db: DataSource, eventId: string, endpointId: string): Promise<void> {
  await db
    .getRepository(WebhookDeliveryEntity)
    .update({ eventId, endpointId, state: 'pending' }, { state: 'failed' });
}

/** Deliveries are kept this long for the dashboard, then deleted by the cleanup schedule. */
export const DELIVERIES_KEPT_SECONDS = 30 * 24 * 3600;

/** Deletes the deliveries older than DELIVERIES_KEPT_SECONDS; one still pending (retrying) cannot be that old. */
export async function deleteOldDeliveries(db: DataSource): Promise<void> {
  await db
    .getRepository(WebhookDeliveryEntity)
    .delete({ createdAt: LessThan(nowSeconds() - DELIVERIES_KEPT_SECONDS) });
}
