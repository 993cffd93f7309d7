import Router from '@koa/router';
import Koa from 'koa';
import { requireApiKey, type AuthState } from './auth';
import type { AppDeps } from './deps';
import { errorHandler, routeNotFound } from './errors';
import { batchesRouter } from './routes/batches';
import { dashboardRouter } from './routes/dashboard';
import { filesRouter } from './routes/files';
import { healthRouter } from './routes/health';
import { metricsRouter } from './routes/metrics';
import { pageRouter } from './routes/page';

/** The whole HTTP API as a Koa app that does not listen, so tests can run it in-process. */
export function createApp(deps: AppDeps): Koa<AuthState> {
  const log = deps.log ?? ((msg: string, err?: unknown) => console.error(msg, err ?? ''));
  const app = new Koa<AuthState>();
  app.proxy = false;
  app.silent = true;
  app.use(errorHandler(log));

  app.use(healthRouter(deps.probes).routes());
  app.use(pageRouter().routes());
  app.use(metricsRouter(deps.keys).routes());

  const v1 = new Router<AuthState>({ prefix: '/v1' });
  v1.use(requireApiKey(deps.keys));
  v1.use(filesRouter(deps).routes());
  v1.use(batchesRouter(deps).routes());
  v1.use(dashboardRouter(deps).routes());
  app.use(v1.routes());
  app.use(v1.allowedMethods({ throw: true }));

  app.use(async (ctx) => {
    throw routeNotFound(ctx.method, ctx.path);
  });
  return app;
}
