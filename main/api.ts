import type { Client } from '@temporalio/client';
import type { Server } from 'node:http';
import { createApp } from '../api/app';
import { connectClient } from '../temporal/client';
import { loadConfig, type Config } from '../src/config';
import { removeOlderThan } from '../src/storage/local-blob-store';
import { spoolDir } from '../api/multipart';
import { ensureApiKey, onShutdown, openServices } from './services';

const STALE_UPLOAD_MS = 60 * 60 * 1000;

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
  const app = createApp({ config, db, blobs, keys, temporal });
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
