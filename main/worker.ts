import http from 'node:http';
import { connectClient } from '../temporal/client';
import { ensureCleanupSchedule } from '../temporal/schedules';
import { createBatchWorker } from '../temporal/worker';
import type { ApiKeys } from '../src/auth/api-keys';
import { loadConfig } from '../src/config';
import { registry } from '../src/metrics/registry';
import { openServices } from './services';

/** Prometheus metrics of this worker (upstream requests, latency, in-flight), behind the same API keys. */
function serveMetrics(port: number, keys: ApiKeys): http.Server {
  return http
    .createServer((req, res) => {
      const key = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
      void (async () => {
        if (req.url !== '/metrics') return res.writeHead(404).end();
        if (!key || !(await keys.authenticate(key))) return res.writeHead(401).end();
        res.writeHead(200, { 'content-type': registry.contentType }).end(await registry.metrics());
      })().catch(() => res.writeHead(503).end());
    })
    .listen(port);
}

/** A batch worker process: polls the task queue until SIGINT/SIGTERM, then drains and exits. */
async function main() {
  const config = loadConfig();
  const { db, blobs, keys } = await openServices(config);
  const { run } = await createBatchWorker(config, { db, blobs });
  const client = await connectClient(config);
  await ensureCleanupSchedule(client, config);
  await client.connection.close();
  const metrics = config.workerMetricsPort ? serveMetrics(config.workerMetricsPort, keys) : null;
  console.log(
    `BESH worker polling task queue '${config.taskQueue}' on ${config.temporalAddress}; upstream ${config.vllmBaseUrl}`,
  );
  await run();
  metrics?.close();
  await db.destroy();
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
