import Router from '@koa/router';
import Koa from 'koa';
import type { ApiKeys } from '../src/auth/api-keys';
import { requireApiKey, type AuthState } from './auth';
import type { AppDeps } from './deps';
import { errorHandler, unmatchedRoute } from './errors';
import { batchesRouter } from './routes/batches';
import { dashboardRouter } from './routes/dashboard';
import { filesRouter } from './routes/files';
import { modelsRouter } from './routes/models';
import { healthRouter } from './routes/health';
import { metricsRouter } from './routes/metrics';
import { openapiRouter } from './routes/openapi';
import { pageRouter } from './routes/page';
import { webhooksRouter } from './routes/webhooks';

type Log = (msg: string, err?: unknown) => void;
const stderrLog: Log = (msg, err) => console.error(msg, err ?? '');

/** A Koa app whose every error, including an unknown route or method, is answered in OpenAI's shape. */
function koaApp(log: Log, mount: (app: Koa<AuthState>) => void): Koa<AuthState> {
  const app = new Koa<AuthState>();
  app.proxy = false;
  app.silent = true;
  app.use(errorHandler(log));
  mount(app);
  app.use(unmatchedRoute);
  return app;
}

/** The whole HTTP API as a Koa app that does not listen, so tests can run it in-process. */
export function createApp(deps: AppDeps): Koa<AuthState> {
  return koaApp(deps.log ?? stderrLog, (app) => {
    app.use(healthRouter(deps.probes).routes());
    app.use(pageRouter().routes());
    app.use(metricsRouter(deps.keys).routes());
    // Ahead of /v1's key check: the description holds no data.
    app.use(openapiRouter().routes());

    const v1 = new Router<AuthState>({ prefix: '/v1' });
    v1.use(requireApiKey(deps.keys));
    v1.use(filesRouter(deps).routes());
    v1.use(batchesRouter(deps).routes());
    v1.use(modelsRouter(deps).routes());
    v1.use(dashboardRouter(deps).routes());
    v1.use(webhooksRouter(deps).routes());
    app.use(v1.routes());
  });
}

/** A worker's own metrics endpoint: `/metrics` alone, with the API's keys, roles and errors. */
export function createMetricsApp(
  keys: ApiKeys,
  log: Log = stderrLog,
  read?: () => Promise<string>,
): Koa<AuthState> {
  return koaApp(log, (app) => app.use(metricsRouter(keys, read).routes()));
}
