import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import fs from 'node:fs';
import type { DataSource } from 'typeorm';
import { createActivities } from '../activities';
import { AdaptiveLimit } from '../activities/adaptive-limit';
import { BatchStops } from '../activities/batch-stops';
import { FairLimiter } from '../activities/fair-limiter';
import { adoptLegacyParts } from '../activities/legacy-parts';
import { ServerQueueWatch } from '../activities/server-queue';
import { Upstream } from '../activities/upstream';
import type { Config } from '../src/config';
import { recordAttempt, trackInFlight } from '../src/metrics/registry';
import type { BlobStore } from '../src/storage/blob-store';
import { LocalBlobStore } from '../src/storage/local-blob-store';
import { compiledBundlePath } from './bundle';

/** The adaptive limit's measurement window. */
const ADAPT_EVERY_MS = 250;

export interface BatchWorker {
  worker: Worker;
  limiter: FairLimiter;
  upstream: Upstream;
  /** Runs until shutdown() or a shutdown signal, then closes the connection and the upstream pool. */
  run(): Promise<void>;
}

function workflowSource(config: Config): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> {
  const prebuilt =
    config.workflowBundlePath ??
    (__filename.endsWith('.js') && fs.existsSync(compiledBundlePath) ? compiledBundlePath : null);
  return prebuilt
    ? { workflowBundle: { codePath: prebuilt } }
    : { workflowsPath: require.resolve('../workflows') };
}

export async function createBatchWorker(
  config: Config,
  deps: {
    db: DataSource;
    blobs: BlobStore;
    parts: BlobStore;
    connection?: NativeConnection;
    /** This process's upstream slots: MAX_WORKERS, or its share when a host runs several worker processes. */
    slots?: number;
  },
  overrides: Partial<WorkerOptions> = {},
): Promise<BatchWorker> {
  const connection = deps.connection ?? (await NativeConnection.connect({ address: config.temporalAddress }));
  // Batches that ran across the upgrade to checkpoint segments keep their answered lines.
  if (deps.parts instanceof LocalBlobStore) await adoptLegacyParts(deps.parts.root);
  const slots = deps.slots ?? config.maxWorkers;
  // Adaptive mode finds the pool's best concurrency itself, up to the slots, starting from a quarter of them so
  // that a short batch on a big pool is not all ramp.
  const adaptive =
    config.concurrencyMode === 'adaptive'
      ? new AdaptiveLimit({
          initial: Math.max(Math.min(32, slots), Math.floor(slots / 4)),
          max: slots,
          onChange: (l) => limiter.setLimit(l),
        })
      : null;
  const limiter = new FairLimiter(adaptive?.limit ?? slots, () => adaptive?.started());
  const servers =
    adaptive && config.vllmMetricsUrls.length > 0
      ? new ServerQueueWatch(config.vllmMetricsUrls, (q) => adaptive.observeServers(q))
      : null;
  const upstream = new Upstream({
    baseUrl: config.vllmBaseUrl,
    apiKey: config.vllmApiKey,
    timeoutMs: config.requestTimeoutMs,
    maxRetries: config.requestMaxRetries,
    onAttempt: ({ outcome, statusCode, latencyMs, key }) => {
      recordAttempt(outcome, statusCode, latencyMs / 1000);
      adaptive?.record({
        latencyMs,
        overloaded: outcome === 'timeout' || statusCode === 429 || statusCode === 503,
        key,
      });
    },
  });
  trackInFlight(
    () => limiter.active,
    () => limiter.limit,
  );
  const draining = new AbortController();
  const stops = new BatchStops(deps.db);
  const activities = createActivities({
    config,
    db: deps.db,
    blobs: deps.blobs,
    parts: deps.parts,
    limiter,
    upstream,
    draining: draining.signal,
    stops,
  });
  const worker = await Worker.create({
    connection,
    namespace: config.temporalNamespace,
    taskQueue: config.taskQueue,
    ...workflowSource(config),
    activities,
    // Chunk activities mostly wait on the shared limiter, so slots are cheap: enough for every running batch's window.
    maxConcurrentActivityTaskExecutions: Math.max(100, config.maxConcurrentBatches * 64),
    // Chunks go through the task queue to every worker host: eager dispatch hands them to the worker that runs the
    // batch's workflow, which kept a whole batch on one host (19,802 of 20,000 requests in the multi-host test).
    maxEagerActivityReservationsPerWorkflowTask: 0,
    shutdownGraceTime: `${config.shutdownGraceSeconds} seconds`,
    ...overrides,
  });
  return {
    worker,
    limiter,
    upstream,
    async run() {
      // Shutdown may come from a signal (the SDK's runtime handles SIGINT/SIGTERM) or from shutdown().
      // Demand: requests wait for a slot, or nearly every slot is taken (between two chunks of a batch nothing
      // waits for a moment, and a limit that only counted waiters could sit above what the pool needs for good).
      const demand = () => limiter.waiting > 0 || limiter.active >= 0.9 * limiter.limit;
      const tuning = adaptive ? setInterval(() => adaptive.tick(demand()), ADAPT_EVERY_MS) : null;
      servers?.start();
      const watch = setInterval(() => {
        if (worker.getState() !== 'RUNNING' && worker.getState() !== 'INITIALIZED') draining.abort();
      }, 100);
      try {
        await worker.run();
      } finally {
        clearInterval(watch);
        stops.close();
        if (tuning) clearInterval(tuning);
        servers?.close();
        await upstream.close();
        if (!deps.connection) await connection.close();
      }
    },
  };
}
