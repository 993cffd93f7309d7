import cluster from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import { createMetricsApp } from '../api/app';
import { registry } from '../src/metrics/registry';
import { connectClient } from '../temporal/client';
import { ensureCleanupSchedule } from '../temporal/schedules';
import { createBatchWorker } from '../temporal/worker';
import { loadConfig } from '../src/config';
import { openServices } from './services';
import { READY, superviseWorkers } from './worker-processes';

/**
 * A batch worker: polls the task queue until SIGINT/SIGTERM, then drains and exits. With WORKER_PROCESSES > 1
 * this process supervises that many of them (main/worker-processes.ts), each with its share of MAX_WORKERS.
 */
async function main() {
  const config = loadConfig();
  if (cluster.isPrimary && config.workerProcesses > 1) return superviseWorkers(config);
  if (cluster.isWorker) {
    // The supervisor serves the host's metrics, summed over its processes: it asks each for its own, from the
    // start (a process that cannot answer yet would stall every scrape until prom-client's timeout).
    AggregatorRegistry.setRegistries([registry]);
    new AggregatorRegistry();
  }
  const { db, blobs, parts, keys } = await openServices(config);
  const processes = cluster.isWorker ? config.workerProcesses : 1;
  const { worker, run } = await createBatchWorker(config, { db, blobs, parts, processes });
  const client = await connectClient(config);
  await ensureCleanupSchedule(client, config);
  await client.connection.close();
  let metrics: { close(): void } | null = null;
  if (cluster.isWorker) {
    // A supervisor that died (kill -9) leaves nobody to forward the shutdown: drain on our own.
    process.on('disconnect', () => worker.getState() === 'RUNNING' && worker.shutdown());
    process.send?.(READY);
  } else if (config.workerMetricsPort) {
    // Prometheus metrics of this worker (upstream requests, latency, in-flight), for operator keys like the API's.
    metrics = createMetricsApp(keys).listen(config.workerMetricsPort);
  }
  console.log(
    `BESH worker polling task queue '${config.taskQueue}' on ${config.temporalAddress}; upstream pools ${config.pools
      .map((p) => `${p.name} (${p.urls.map(withoutCredentials).join(', ')})`)
      .join('; ')}`,
  );
  await run();
  metrics?.close();
  await db.destroy();
  // The channel to the supervisor would keep this process alive.
  if (cluster.isWorker) process.disconnect();
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});

/** A URL for the log: a user or password in it stays out. */
function withoutCredentials(raw: string): string {
  const url = new URL(raw);
  url.username = '';
  url.password = '';
  return url.toString();
}
