import type { Client } from '@temporalio/client';
import type Koa from 'koa';
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { DataSource } from 'typeorm';
import { createApp } from '../api/app';
import type { AuthState } from '../api/auth';
import type { ApiKeys } from '../src/auth/api-keys';
import { loadConfig, type Config } from '../src/config';
import { spoolDir } from '../src/files/spool';
import { trackRunningBatches } from '../src/metrics/registry';
import { BatchService } from '../src/services/batch-service';
import { FileService } from '../src/services/file-service';
import { IdempotencyService } from '../src/services/idempotency';
import { ServedModels } from '../src/services/model-catalog';
import { PoolStatsService } from '../src/services/pool-stats';
import { PartialResultsService } from '../src/services/partial-results';
import { StatsService } from '../src/services/stats-service';
import type { BlobStore } from '../src/storage/blob-store';
import { removeOlderThan } from '../src/storage/local-blob-store';
import { startWebhookWorkflow, webhookAnnouncer } from '../src/webhooks/announce';
import { WebhookService } from '../src/webhooks/endpoints';
import { connectClient, TemporalBatchEngine } from '../temporal/client';
import { ensureApiKey, onShutdown, openServices } from './services';

const STALE_UPLOAD_MS = 60 * 60 * 1000;

export interface ApiParts {
  db: DataSource;
  blobs: BlobStore;
  /** Where chunks store their finished lines: partial results read running batches from there. */
  parts: BlobStore;
  keys: ApiKeys;
  temporal: Client;
  log?: (msg: string, err?: unknown) => void;
}

/** The HTTP API over its services, with the batch gauge of this process counted from the same database. */
export function composeApi(
  config: Config,
  { db, blobs, parts, keys, temporal, log }: ApiParts,
): Koa<AuthState> {
  const engine = new TemporalBatchEngine(temporal, config);
  // A batch the API fails (its run ended without a final status) sends its webhooks like any other.
  const announce = webhookAnnouncer(db, (event) => startWebhookWorkflow(temporal, config.taskQueue, event));
  const batches = new BatchService(db, blobs, engine, undefined, undefined, announce);
  const files = new FileService(db, blobs, {
    maxUploadBytes: config.maxUploadBytes,
    maxLineBytes: config.maxLineBytes,
    maxUploadLines: config.maxUploadLines,
    maxExpansionRatio: config.maxExpansionRatio,
    spoolDir: spoolDir(config),
  });
  trackRunningBatches(() => batches.unfinishedByStatus());
  return createApp({
    config,
    keys,
    batches,
    results: new PartialResultsService(db, blobs, parts),
    files,
    idempotency: new IdempotencyService(db),
    webhooks: new WebhookService(db, config.webhookAllowPrivate),
    models: new ServedModels(config.pools),
    poolStats: new PoolStatsService(
      db,
      config.pools.map((p) => p.name),
    ),
    stats: new StatsService(db),
    probes: {
      database: () => db.query('SELECT 1'),
      temporal: () => engine.ping(),
      storage: () => blobs.ping(),
    },
    log,
  });
}

/**
 * The API's HTTP server: a client holds a connection only while it makes progress. Its headers must arrive within
 * HTTP_HEADERS_TIMEOUT_SECONDS, a request body may pause at most HTTP_BODY_IDLE_TIMEOUT_SECONDS between bytes, and
 * an idle keep-alive connection closes after HTTP_KEEP_ALIVE_TIMEOUT_SECONDS. A whole request has no deadline: a
 * 200 MB upload over a slow link that keeps sending must succeed.
 */
export function createApiServer(app: Koa<AuthState>, config: Config): Server {
  const headersTimeout = config.httpHeadersTimeoutSeconds * 1000;
  const server = http.createServer(
    {
      headersTimeout,
      requestTimeout: 0,
      // Late headers are looked for on this period (30 s by default), which adds to their timeout.
      connectionsCheckingInterval: 1000,
    },
    app.callback(),
  );
  server.keepAliveTimeout = config.httpKeepAliveTimeoutSeconds * 1000;
  const bodyIdle = config.httpBodyIdleTimeoutSeconds * 1000;
  server.on('request', (req: IncomingMessage, res: ServerResponse) => limitBodyIdle(req, res, bodyIdle));
  return server;
}

/**
 * Ends the connection when the request's body pauses longer than `ms` (with no listener for the socket's timeout,
 * Node destroys the socket, and the request is aborted). Only while the body arrives: a handler may then take
 * its time.
 */
function limitBodyIdle(req: IncomingMessage, res: ServerResponse, ms: number): void {
  const hasBody =
    req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  if (!hasBody) return;
  req.socket.setTimeout(ms);
  // A body still unread when the response finishes ends later, once Node has set the keep-alive timeout.
  req.once('end', () => {
    if (!res.writableFinished) req.socket.setTimeout(0);
  });
}

/** Starts the HTTP API; resolves once it listens. */
export async function startApi(
  config: Config,
): Promise<{ server: Server; temporal: Client; close(): Promise<void> }> {
  const { db, blobs, parts, keys } = await openServices(config);
  await ensureApiKey(config, keys);
  // Uploads interrupted by a crash leave spool and temp files that nothing references. Only old ones go:
  // another API process sharing DATA_DIR may be receiving an upload right now.
  await blobs.sweepIncomplete(STALE_UPLOAD_MS);
  await removeOlderThan(spoolDir(config), STALE_UPLOAD_MS);
  const temporal = await connectClient(config);
  const app = composeApi(config, { db, blobs, parts, keys, temporal });
  const server = createApiServer(app, config).listen(config.port, config.host);
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  console.log(`BESH API listening on http://${config.host}:${config.port}`);
  return {
    server,
    temporal,
    async close() {
      // Stop accepting, drop idle keep-alive sockets, and let requests in progress finish.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await closed;
      await temporal.connection.close();
      await db.destroy();
    },
  };
}

if (require.main === module) {
  startApi(loadConfig()).then(
    (api) => onShutdown(() => api.close()),
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    },
  );
}
