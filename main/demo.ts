import path from 'node:path';
import { parseArgs } from 'node:util';
import { startDevServer } from '../temporal/dev-server';
import { ensureCleanupSchedule } from '../temporal/schedules';
import { createBatchWorker } from '../temporal/worker';
import { loadConfig } from '../src/config';
import { startSimulator } from '../src/simulator/server';
import { startApi } from './api';
import { openServices } from './services';

/**
 * `make demo` / `make dev`: the whole of BESH in one foreground process on the embedded defaults — the Temporal
 * dev server (file-backed, Web UI on :8233), the vLLM simulator on :8000 (not with --no-simulator), a worker
 * and the API. Ctrl-C stops everything.
 */
async function main() {
  const { values } = parseArgs({ options: { 'no-simulator': { type: 'boolean', default: false } } });
  const config = loadConfig();
  const [host, port] = config.temporalAddress.split(':');
  const temporal = await startDevServer({
    ip: host,
    port: Number(port),
    uiPort: config.temporalUiPort,
    dbFile: path.join(config.dataDir, 'temporal.sqlite'),
    logFile: path.join(config.dataDir, 'temporal.log'),
  });
  console.log(`Temporal dev server on ${temporal.address}; Web UI ${config.temporalUiUrl}`);
  const simulator = values['no-simulator']
    ? null
    : await startSimulator({ port: Number(new URL(config.vllmBaseUrl).port || 8000), capacity: 64 });
  if (simulator) console.log(`vLLM simulator on ${simulator.url}`);

  const { db, blobs } = await openServices(config);
  const worker = await createBatchWorker(config, { db, blobs });
  const running = worker.run();
  const api = await startApi(config);
  await ensureCleanupSchedule(api.temporal, config);
  console.log(
    '\nReady. Point the openai SDK at base URL http://%s:%d/v1 (Ctrl-C stops).',
    config.host,
    config.port,
  );

  // The worker's runtime already listens for SIGINT/SIGTERM and drains; the rest stops after it.
  await running;
  await api.close();
  await db.destroy();
  await simulator?.close();
  await temporal.stop();
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
