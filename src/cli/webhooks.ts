import type OpenAI from 'openai';
import { WEBHOOK_EVENT_TYPES } from '../contract/webhook-workflow';
import type { ListPage } from '../shared/openai';
import type {
  CreatedWebhookEndpoint,
  WebhookEndpointDeleted,
  WebhookEndpointObject,
} from '../webhooks/endpoints';
import { parseCommand, takePositionals, UsageError } from './args';
import { CONNECTION_HELP, CONNECTION_OPTIONS, createClient } from './client';
import { utc } from './format';

export const WEBHOOKS_USAGE = `usage: besh webhooks add URL [--events EVENT,EVENT...]
       besh webhooks list
       besh webhooks delete ID

  add       registers URL for the key's tenant; prints the endpoint id and its signing secret (shown only now)
            --events: ${WEBHOOK_EVENT_TYPES.join(', ')} (default: all)
  list      the tenant's endpoints, newest first
  delete    stops deliveries to the endpoint, including retries under way
${CONNECTION_HELP}`;

/** `webhook_endpoints/{id}`, the id escaped so it cannot change the path. */
const endpointPath = (id: string) => `/webhook_endpoints/${encodeURIComponent(id)}`;

async function list(client: OpenAI): Promise<void> {
  const rows: WebhookEndpointObject[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await client.get<ListPage<WebhookEndpointObject>>('/webhook_endpoints', {
      query: { limit: 100, ...(after ? { after } : {}) },
    });
    rows.push(...page.data);
    if (!page.has_more || !page.last_id) break;
    after = page.last_id;
  }
  console.log(['ID', 'URL', 'EVENTS', 'CREATED (UTC)'].join('\t'));
  for (const w of rows) console.log([w.id, w.url, w.events.join(','), utc(w.created_at)].join('\t'));
}

export async function webhooks(args: string[]): Promise<void> {
  const { values, positionals } = parseCommand(args, WEBHOOKS_USAGE, {
    ...CONNECTION_OPTIONS,
    events: { type: 'string' },
  });
  const [action, ...rest] = positionals;
  if (action !== 'add' && values.events !== undefined) {
    throw new UsageError(`--events goes with add\n\n${WEBHOOKS_USAGE}`);
  }
  if (action === 'add') {
    const [url] = takePositionals(rest, ['URL'], WEBHOOKS_USAGE);
    const events = values.events?.split(',').map((e) => e.trim());
    const created = await createClient(values).post<CreatedWebhookEndpoint>('/webhook_endpoints', {
      body: { url, ...(events ? { events } : {}) },
    });
    console.log(`${created.id}\t${created.url}\t${created.events.join(',')}`);
    console.log(`secret: ${created.secret}`);
    console.log('Keep the secret: receivers verify deliveries with it, and it is not shown again.');
    return;
  }
  if (action === 'list') {
    takePositionals(rest, [], WEBHOOKS_USAGE);
    return list(createClient(values));
  }
  if (action === 'delete') {
    const [id] = takePositionals(rest, ['ID'], WEBHOOKS_USAGE);
    const deleted = await createClient(values).delete<WebhookEndpointDeleted>(endpointPath(id));
    console.log(`Deleted ${deleted.id}; nothing more is delivered to it.`);
    return;
  }
  throw new UsageError(`${action ? `unknown action "${action}"` : 'missing action'}\n\n${WEBHOOKS_USAGE}`);
}
