import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * One registry per process. The API exposes it at /metrics; a worker on WORKER_METRICS_PORT. In `make demo`
 * both live in one process, so one scrape sees everything.
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'besh_' });

const upstreamRequests = new Counter({
  name: 'besh_upstream_requests_total',
  help: 'Upstream HTTP attempts by pool, outcome and status code (retries count separately).',
  labelNames: ['outcome', 'status_code', 'pool'] as const,
  registers: [registry],
});

const upstreamLatency = new Histogram({
  name: 'besh_upstream_request_duration_seconds',
  help: 'Time of one upstream attempt, from sending to the whole body received, by pool and outcome.',
  labelNames: ['outcome', 'pool'] as const,
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
  registers: [registry],
});

/**
 * Counts one upstream attempt. The labelled children are looked up once per outcome and status: hashing the
 * labels on every attempt was a visible share of a worker's CPU at thousands of requests a second.
 */
const attemptMetrics = new Map<
  string,
  {
    counter: ReturnType<typeof upstreamRequests.labels>;
    histogram: ReturnType<typeof upstreamLatency.labels>;
  }
>();
export function recordAttempt(
  pool: string,
  outcome: string,
  statusCode: number | null,
  seconds: number,
): void {
  const status = statusCode === null ? 'none' : String(statusCode);
  const key = `${pool} ${outcome} ${status}`;
  let m = attemptMetrics.get(key);
  if (!m) {
    m = {
      counter: upstreamRequests.labels(outcome, status, pool),
      histogram: upstreamLatency.labels(outcome, pool),
    };
    attemptMetrics.set(key, m);
  }
  m.counter.inc();
  m.histogram.observe(seconds);
}

export interface PoolGauges {
  pool: string;
  inFlight: number;
  limit: number;
}
let readPools: () => PoolGauges[] = () => [];
/** The worker tells the gauges where to read each pool's in-flight count and limit; read at scrape time. */
export const trackPools = (read: () => PoolGauges[]) => {
  readPools = read;
};

new Gauge({
  name: 'besh_upstream_concurrency_limit',
  help: "The upstream concurrency this worker allows a pool now (adaptive, at most the pool's MAX_WORKERS share).",
  labelNames: ['pool'] as const,
  registers: [registry],
  collect() {
    for (const p of readPools()) this.set({ pool: p.pool }, p.limit);
  },
});

new Gauge({
  name: 'besh_upstream_in_flight',
  help: 'Upstream requests in flight to a pool in this worker process.',
  labelNames: ['pool'] as const,
  registers: [registry],
  collect() {
    for (const p of readPools()) this.set({ pool: p.pool }, p.inFlight);
  },
});

export const batchQueueWait = new Histogram({
  name: 'besh_batch_queue_wait_seconds',
  help: 'From batch creation to in_progress: validation plus the wait for a MAX_CONCURRENT_BATCHES slot.',
  buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600],
  registers: [registry],
});

export const batchesFinished = new Counter({
  name: 'besh_batches_finished_total',
  help: 'Batches that reached a final status, by status.',
  labelNames: ['status'] as const,
  registers: [registry],
});

let readRunningBatches: () => Promise<Record<string, number>> = async () => ({});
/** The API's composition root (main/api.ts) tells the gauge how to count unfinished batches; read at scrape time. */
export const trackRunningBatches = (read: () => Promise<Record<string, number>>) => {
  readRunningBatches = read;
};

new Gauge({
  name: 'besh_batches',
  help: 'Batches not yet finished, by status, across all tenants.',
  labelNames: ['status'] as const,
  registers: [registry],
  async collect() {
    this.reset();
    for (const [status, n] of Object.entries(await readRunningBatches())) this.set({ status }, n);
  },
});
