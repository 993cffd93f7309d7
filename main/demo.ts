import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startDevServer } from '../temporal/dev-server';
import { ensureCleanupSchedule } from '../temporal/schedules';
import { createBatchWorker } from '../temporal/worker';
import { loadConfig, type Config } from '../src/config';
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

  const { db, blobs, parts } = await openServices(config);
  const worker = await createBatchWorker(config, { db, blobs, parts });
  const running = worker.run();
  const api = await startApi(config);
  await ensureCleanupSchedule(api.temporal, config);
  console.log(readyMessage(config));

  // The worker's runtime already listens for SIGINT/SIGTERM and drains; the rest stops after it.
  await running;
  await api.close();
  await db.destroy();
  await simulator?.close();
  await temporal.stop();
}

/** Where everything is, and the first batch to run from this checkout (the README's walkthrough). */
function readyMessage(config: Config): string {
  const baseUrl = `http://${config.host}:${config.port}/v1`;
  const keyFile = path.join(config.dataDir, 'api-key.txt');
  const shown = path.relative('.', keyFile).startsWith('..') ? keyFile : path.relative('.', keyFile);
  const key = fs.existsSync(keyFile) ? `$(cat ${shown})` : '<your API key>';
  return [
    `\nReady (Ctrl-C stops). The openai SDK's base URL: ${baseUrl}`,
    `Dashboard: http://${config.host}:${config.port}/ (sign in with the API key)`,
    'A first batch from another terminal in this checkout: `make install-cli` puts `besh` on your PATH, then',
    `    export BESH_API_KEY=${key}`,
    `    export BESH_BASE_URL=${baseUrl}`,
    '    besh submit examples/chat-completions.jsonl --endpoint /v1/chat/completions --wait',
  ].join('\n');
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
