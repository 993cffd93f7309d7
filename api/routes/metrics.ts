import Router from '@koa/router';
import type { ApiKeys } from '../../src/auth/api-keys';
import { registry } from '../../src/metrics/registry';
import { requireApiKey, requireOperator, type AuthState } from '../auth';

/**
 * `GET /metrics` in Prometheus text format. It counts every tenant's batches, so only operator keys read it.
 * `read` gives the text: this process's registry, or the sum over a host's worker processes.
 */
export function metricsRouter(keys: ApiKeys, read = () => registry.metrics()): Router<AuthState> {
  const router = new Router<AuthState>();
  router.get('/metrics', requireApiKey(keys), requireOperator, async (ctx) => {
    ctx.type = registry.contentType;
    ctx.body = await read();
  });
  return router;
}
