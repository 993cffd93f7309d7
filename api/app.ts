import Router from '@koa/router';
import type { Client } from '@temporalio/client';
import Koa from 'koa';
import type { DataSource } from 'typeorm';
import type { ApiKeys } from '../src/auth/api-keys';
import type { Config } from '../src/config';
import type { BlobStore } from '../src/storage/blob-store';
import { requireApiKey, type AuthState } from './auth';
import { errorHandler, routeNotFound } from './errors';
import { batchesRouter } from './routes/batches';
import { dashboardRouter } from './routes/dashboard';
import { filesRouter } from './routes/files';
import { healthRouter } from './routes/health';
import { metricsRouter } from './routes/metrics';
import { pageRouter } from './routes/page';

export interface AppDeps {
  config: Config;
  db: DataSource;
  blobs: BlobStore;
  keys: ApiKeys;
  temporal: Client;
  log?: (msg: string, err?: unknown) => void;
}

/** The whole HTTP API as a Koa app that does not listen, so tests can run it in-process. */
export function createApp(deps: AppDeps): Koa<AuthState> {
  const log = deps.log ?? ((msg: string, err?: unknown) => console.error(msg, err ?? ''));
  const app = new Koa<AuthState>();
  app.proxy = false;
  app.silent = true;
  app.use(errorHandler(log));

  app.use(healthRouter(deps).routes());
  app.use(pageRouter().routes());
  app.use(metricsRouter(deps).routes());

  const v1 = new Router<AuthState>({ prefix: '/v1' });
  v1.use(requireApiKey(deps.keys));
  const files = filesRouter(deps);
  v1.use(files.routes());
  v1.use(batchesRouter(deps).routes());
  v1.use(dashboardRouter(deps).routes());
  app.use(v1.routes());
  app.use(v1.allowedMethods({ throw: true }));

  app.use(async (ctx) => {
    throw routeNotFound(ctx.method, ctx.path);
  });
  return app;
}
