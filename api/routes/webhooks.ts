import Router from '@koa/router';
import type { AuthState } from '../auth';
import type { AppDeps } from '../deps';
import { listBody, parseLimit, queryString } from '../query';
import { jsonBody } from './batches';

/** Webhook endpoints of the key's tenant (OpenAI configures these in its dashboard; BESH has an API for it). */
export function webhooksRouter({ webhooks }: Pick<AppDeps, 'webhooks'>): Router<AuthState> {
  const router = new Router<AuthState>();

  router.post('/webhook_endpoints', jsonBody, async (ctx) => {
    ctx.body = await webhooks.create(ctx.state.principal.tenantId, ctx.request.body);
  });

  router.get('/webhook_endpoints', async (ctx) => {
    const { data, hasMore } = await webhooks.list(ctx.state.principal.tenantId, {
      limit: parseLimit(ctx.query.limit, 20, 100),
      after: queryString(ctx.query.after, 'after'),
    });
    ctx.body = listBody(data, hasMore);
  });

  router.get('/webhook_endpoints/:id', async (ctx) => {
    ctx.body = await webhooks.get(ctx.state.principal.tenantId, ctx.params.id);
  });

  router.delete('/webhook_endpoints/:id', async (ctx) => {
    ctx.body = await webhooks.delete(ctx.state.principal.tenantId, ctx.params.id);
  });

  return router;
}
