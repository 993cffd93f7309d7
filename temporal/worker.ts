import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import fs from 'node:fs';
import type { DataSource } from 'typeorm';
import { createActivities } from '../activities';
import { BatchStops } from '../activities/batch-stops';
import { adoptLegacyParts } from '../activities/legacy-parts';
import { UpstreamPools } from '../activities/upstream-pools';
import type { Config } from '../src/config';
import type { BlobStore } from '../src/storage/blob-store';
import { LocalBlobStore } from '../src/storage/local-blob-store';
import { compiledBundlePath } from './bundle';

export interface BatchWorker {
  worker: Worker;
  pools: UpstreamPools;
  /** Runs until shutdown() or a shutdown signal, then closes the connection and the upstream pools. */
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
    /** The worker processes of this host, which share each pool's MAX_WORKERS (1 when unset). */
    processes?: number;
  },
  overrides: Partial<WorkerOptions> = {},
): Promise<BatchWorker> {
  const connection = deps.connection ?? (await NativeConnection.connect({ address: config.temporalAddress }));
  // Batches that ran across the upgrade to checkpoint segments keep their answered lines.
  if (deps.parts instanceof LocalBlobStore) await adoptLegacyParts(deps.parts.root);
  const pools = new UpstreamPools(config, deps.processes);
  const draining = new AbortController();
  const stops = new BatchStops(deps.db);
  const activities = createActivities({
    config,
    db: deps.db,
    blobs: deps.blobs,
    parts: deps.parts,
    pools,
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
    pools,
    async run() {
      pools.start(deps.db);
      // Shutdown may come from a signal (the SDK's runtime handles SIGINT/SIGTERM) or from shutdown().
      const watch = setInterval(() => {
        if (worker.getState() !== 'RUNNING' && worker.getState() !== 'INITIALIZED') draining.abort();
      }, 100);
      try {
        await worker.run();
      } finally {
        clearInterval(watch);
        stops.close();
        await pools.close();
        if (!deps.connection) await connection.close();
      }
    },
  };
}
