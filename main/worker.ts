import { createMetricsApp } from '../api/app';
import { connectClient } from '../temporal/client';
import { ensureCleanupSchedule } from '../temporal/schedules';
import { createBatchWorker } from '../temporal/worker';
import { loadConfig } from '../src/config';
import { openServices } from './services';

/** A batch worker process: polls the task queue until SIGINT/SIGTERM, then drains and exits. */
async function main() {
  const config = loadConfig();
  const { db, blobs, parts, keys } = await openServices(config);
  const { run } = await createBatchWorker(config, { db, blobs, parts });
  const client = await connectClient(config);
  await ensureCleanupSchedule(client, config);
  await client.connection.close();
  // Prometheus metrics of this worker (upstream requests, latency, in-flight), for operator keys like the API's.
  const metrics = config.workerMetricsPort ? createMetricsApp(keys).listen(config.workerMetricsPort) : null;
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
