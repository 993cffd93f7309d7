import { connectClient } from '../../temporal/client';
import { ensureCleanupSchedule } from '../../temporal/schedules';
import { createBatchWorker } from '../../temporal/worker';
import { loadConfig } from '../config';
import { openServices } from './services';

/** A batch worker process: polls the task queue until SIGINT/SIGTERM, then drains and exits. */
async function main() {
  const config = loadConfig();
  const { db, blobs } = await openServices(config);
  const { run } = await createBatchWorker(config, { db, blobs });
  const client = await connectClient(config);
  await ensureCleanupSchedule(client, config);
  await client.connection.close();
  console.log(
    `BESH worker polling task queue '${config.taskQueue}' on ${config.temporalAddress}; upstream ${config.vllmBaseUrl}`,
  );
  await run();
  await db.destroy();
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
