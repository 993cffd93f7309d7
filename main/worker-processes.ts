import cluster, { type Worker as ClusterWorker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import { createMetricsApp } from '../api/app';
import type { Config } from '../src/config';
import { openServices } from './services';

/** What a worker process sends once it polls the task queue. */
export const READY = 'besh-worker-ready';

/**
 * WORKER_PROCESSES > 1: this process runs that many worker processes (node:cluster) and does nothing else. A
 * worker process is one event loop, so this is how one host uses all its cores. Each runs its own Temporal
 * worker and adaptive limit over an equal share of MAX_WORKERS. This process serves their summed metrics,
 * forwards SIGTERM/SIGINT so that each drains, restarts one that crashed, and stops them all with an error when
 * one dies before it is ready (a bad setting or an unreachable Temporal: restarting it would only loop, and the
 * orchestrator sees the failure as it would a single worker's).
 */
export async function superviseWorkers(config: Config): Promise<void> {
  const n = config.workerProcesses;
  const aggregator = new AggregatorRegistry();
  const services = config.workerMetricsPort ? await openServices(config) : null;
  const metrics = services
    ? createMetricsApp(services.keys, undefined, () => aggregator.clusterMetrics()).listen(
        config.workerMetricsPort,
      )
    : null;
  const running = new Set<ClusterWorker>();
  const ready = new WeakSet<ClusterWorker>();
  let stopping = false;
  let failed = false;
  const fork = () => {
    const w = cluster.fork();
    running.add(w);
    w.on('message', (m: unknown) => m === READY && ready.add(w));
  };
  const stop = () => {
    stopping = true;
    for (const w of running) w.process.kill('SIGTERM');
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  console.log(
    `BESH worker host: ${n} worker processes, ${Math.floor(config.maxWorkers / n)} upstream slots each`,
  );
  await new Promise<void>((resolve) => {
    cluster.on('exit', (w, code, signal) => {
      running.delete(w);
      if (!stopping) {
        const started = ready.has(w);
        console.error(
          `worker process ${w.process.pid} exited (${signal ?? code}); ${started ? 'restarting it' : 'it never started: stopping'}`,
        );
        if (started) fork();
        else {
          failed = true;
          stop();
        }
      }
      if (stopping && running.size === 0) resolve();
    });
    for (let i = 0; i < n; i++) fork();
  });
  metrics?.close();
  await services?.db.destroy();
  if (failed) throw new Error('a worker process failed to start');
}
