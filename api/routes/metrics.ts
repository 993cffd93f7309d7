import Router from '@koa/router';
import type { ApiKeys } from '../../src/auth/api-keys';
import { registry } from '../../src/metrics/registry';
import { requireApiKey, type AuthState } from '../auth';

/** `GET /metrics` in Prometheus text format, behind the API key like everything with data. */
export function metricsRouter(keys: ApiKeys): Router<AuthState> {
  const router = new Router<AuthState>();
  router.get('/metrics', requireApiKey(keys), async (ctx) => {
    ctx.type = registry.contentType;
    ctx.body = await registry.metrics();
  });
  return router;
}
