import type { DataSource } from 'typeorm';
import { WebhookDeliveryEntity, WebhookEndpointEntity, type WebhookEndpointRow } from '../db/entities';
import { page } from '../db/paginate';
import { WEBHOOK_EVENT_TYPES, type WebhookEventType } from '../contract/webhook-workflow';
import { notFound, Refused } from '../services/errors';
import { resolveCursor, type Page } from '../services/listing';
import { isWebhookEndpointId, newWebhookEndpointId } from '../shared/ids';
import { isWebhookEventType } from './events';
import { newWebhookSecret } from './signing';
import { assertPublicTarget, parseWebhookUrl } from './url-policy';

export interface WebhookEndpointObject {
  id: string;
  object: 'webhook_endpoint';
  url: string;
  events: WebhookEventType[];
  created_at: number;
}

/** Only the create answer shows the secret. */
export type CreatedWebhookEndpoint = WebhookEndpointObject & { secret: string };

export interface WebhookEndpointDeleted {
  id: string;
  object: 'webhook_endpoint.deleted';
  deleted: true;
}

/** At most this many endpoints per tenant: each final batch sends one request per endpoint. */
export const MAX_ENDPOINTS_PER_OWNER = 20;

const toObject = (r: WebhookEndpointRow): WebhookEndpointObject => ({
  id: r.id,
  object: 'webhook_endpoint',
  url: r.url,
  events: r.events.filter(isWebhookEventType),
  created_at: r.createdAt,
});

function parseEvents(raw: unknown): WebhookEventType[] {
  if (raw === undefined || raw === null) return [...WEBHOOK_EVENT_TYPES];
  const wrong = (detail: string) =>
    new Refused(
      'invalid',
      `'events' ${detail}: expected a non-empty list of ${WEBHOOK_EVENT_TYPES.join(', ')}.`,
      'invalid_value',
      'events',
    );
  if (!Array.isArray(raw) || raw.length === 0) throw wrong('is not a non-empty list');
  const unknown = raw.find((e) => !isWebhookEventType(e));
  if (unknown !== undefined) throw wrong(`holds an unknown event ${JSON.stringify(unknown).slice(0, 100)}`);
  // In the canonical order, each once.
  return WEBHOOK_EVENT_TYPES.filter((t) => (raw as unknown[]).includes(t));
}

/** Webhook endpoints of one owner: register, read, list and delete. */
export class WebhookService {
  private readonly endpoints;

  constructor(
    private readonly db: DataSource,
    private readonly allowPrivate: boolean,
  ) {
    this.endpoints = db.getRepository(WebhookEndpointEntity);
  }

  async create(owner: string, body: unknown): Promise<CreatedWebhookEndpoint> {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new Refused('invalid', 'The request body must be a JSON object.', 'invalid_request');
    }
    const { url: rawUrl, events: rawEvents, ...rest } = body as Record<string, unknown>;
    const extra = Object.keys(rest)[0];
    if (extra !== undefined) {
      throw new Refused(
        'invalid',
        `Unknown parameter: '${extra.slice(0, 100)}'.`,
        'unknown_parameter',
        extra,
      );
    }
    const url = parseWebhookUrl(rawUrl, this.allowPrivate);
    const events = parseEvents(rawEvents);
    await assertPublicTarget(url, this.allowPrivate);
    if ((await this.endpoints.countBy({ owner })) >= MAX_ENDPOINTS_PER_OWNER) {
      throw new Refused(
        'invalid',
        `At most ${MAX_ENDPOINTS_PER_OWNER} webhook endpoints per tenant; delete one first.`,
        'too_many_endpoints',
      );
    }
    const row: WebhookEndpointRow = {
      id: newWebhookEndpointId(),
      owner,
      url: url.toString(),
      events,
      secret: newWebhookSecret(),
      createdAt: Math.floor(Date.now() / 1000),
    };
    await this.endpoints.insert({ ...row });
    return { ...toObject(row), secret: row.secret };
  }

  async get(owner: string, id: string): Promise<WebhookEndpointObject> {
    return toObject(await this.findOwned(owner, id));
  }

  async list(owner: string, opts: { limit: number; after?: string }): Promise<Page<WebhookEndpointObject>> {
    const qb = this.endpoints.createQueryBuilder('w').where('w.owner = :owner', { owner });
    const after = await resolveCursor(opts.after, 'WebhookEndpoint', isWebhookEndpointId, (id) =>
      this.endpoints.findOneBy({ id, owner }),
    );
    const { rows, hasMore } = await page(qb, { limit: opts.limit, order: 'desc', after });
    return { data: rows.map(toObject), hasMore };
  }

  /** Deliveries still retrying to it stop at their next attempt. */
  async delete(owner: string, id: string): Promise<WebhookEndpointDeleted> {
    const row = await this.findOwned(owner, id);
    await this.endpoints.delete({ id: row.id, owner });
    return { id: row.id, object: 'webhook_endpoint.deleted', deleted: true };
  }

  /** The newest deliveries: of one owner, or of every owner (`null`, for operators). */
  async recentDeliveries(owner: string | null, limit: number) {
    const rows = await this.db.getRepository(WebhookDeliveryEntity).find({
      where: owner === null ? {} : { owner },
      order: { createdAt: 'DESC', eventId: 'ASC', endpointId: 'ASC' },
      take: limit,
    });
    return rows.map((r) => ({
      event_id: r.eventId,
      endpoint_id: r.endpointId,
      batch_id: r.batchId,
      type: r.type,
      state: r.state,
      attempts: r.attempts,
      last_status_code: r.lastStatusCode,
      last_error: r.lastError,
      created_at: r.createdAt,
      last_attempt_at: r.lastAttemptAt,
      delivered_at: r.deliveredAt,
      ...(owner === null ? { owner: r.owner } : {}),
    }));
  }

  private async findOwned(owner: string, id: string): Promise<WebhookEndpointRow> {
    const row = isWebhookEndpointId(id) ? await this.endpoints.findOneBy({ id, owner }) : null;
    if (!row) throw notFound('WebhookEndpoint', id);
    return row;
  }
}
