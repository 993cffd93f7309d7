import type { Client } from '@temporalio/client';
import type Koa from 'koa';
import type { Server } from 'node:http';
import type { DataSource } from 'typeorm';
import { createApp } from '../api/app';
import type { AuthState } from '../api/auth';
import type { ApiKeys } from '../src/auth/api-keys';
import { loadConfig, type Config } from '../src/config';
import { spoolDir } from '../src/files/spool';
import { trackRunningBatches } from '../src/metrics/registry';
import { BatchService } from '../src/services/batch-service';
import { FileService } from '../src/services/file-service';
import { StatsService } from '../src/services/stats-service';
import type { BlobStore } from '../src/storage/blob-store';
import { removeOlderThan } from '../src/storage/local-blob-store';
import { connectClient, TemporalBatchEngine } from '../temporal/client';
import { ensureApiKey, onShutdown, openServices } from './services';

const STALE_UPLOAD_MS = 60 * 60 * 1000;

export interface ApiParts {
  db: DataSource;
  blobs: BlobStore;
  keys: ApiKeys;
  temporal: Client;
  log?: (msg: string, err?: unknown) => void;
}

/** The HTTP API over its services, with the batch gauge of this process counted from the same database. */
export function composeApi(config: Config, { db, blobs, keys, temporal, log }: ApiParts): Koa<AuthState> {
  const engine = new TemporalBatchEngine(temporal, config.taskQueue);
  const batches = new BatchService(db, blobs, engine);
  const files = new FileService(db, blobs, {
    maxUploadBytes: config.maxUploadBytes,
    maxLineBytes: config.maxLineBytes,
    spoolDir: spoolDir(config),
  });
  trackRunningBatches(() => batches.unfinishedByStatus());
  return createApp({
    config,
    keys,
    batches,
    files,
    stats: new StatsService(db),
    probes: { database: () => db.query('SELECT 1'), temporal: () => engine.ping() },
    log,
  });
}

/** Starts the HTTP API; resolves once it listens. */
export async function startApi(
  config: Config,
): Promise<{ server: Server; temporal: Client; close(): Promise<void> }> {
  const { db, blobs, keys } = await openServices(config);
  await ensureApiKey(config, keys);
  // Uploads interrupted by a crash leave spool and temp files that nothing references. Only old ones go:
  // another API process sharing DATA_DIR may be receiving an upload right now.
  await blobs.sweepIncomplete(STALE_UPLOAD_MS);
  await removeOlderThan(spoolDir(config), STALE_UPLOAD_MS);
  const temporal = await connectClient(config);
  const app = composeApi(config, { db, blobs, keys, temporal });
  const server = app.listen(config.port, config.host);
  // Long uploads of 200 MB must not be cut by Node's default request timeout.
  server.requestTimeout = 0;
  server.keepAliveTimeout = 65_000;
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
