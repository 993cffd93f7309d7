import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * One registry per process. The API exposes it at /metrics; a worker on WORKER_METRICS_PORT. In `make demo`
 * both live in one process, so one scrape sees everything.
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'besh_' });

const upstreamRequests = new Counter({
  name: 'besh_upstream_requests_total',
  help: 'Upstream HTTP attempts by outcome and status code (retries count separately).',
  labelNames: ['outcome', 'status_code'] as const,
  registers: [registry],
});

const upstreamLatency = new Histogram({
  name: 'besh_upstream_request_duration_seconds',
  help: 'Time of one upstream attempt, from sending to the whole body received.',
  labelNames: ['outcome'] as const,
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
export function recordAttempt(outcome: string, statusCode: number | null, seconds: number): void {
  const status = statusCode === null ? 'none' : String(statusCode);
  const key = `${outcome} ${status}`;
  let m = attemptMetrics.get(key);
  if (!m) {
    m = { counter: upstreamRequests.labels(outcome, status), histogram: upstreamLatency.labels(outcome) };
    attemptMetrics.set(key, m);
  }
  m.counter.inc();
  m.histogram.observe(seconds);
}

let readInFlight: () => number = () => 0;
let readLimit: () => number = () => 0;
/** The worker tells the gauges where to read its in-flight count and limit; read at scrape time, not per request. */
export const trackInFlight = (inFlight: () => number, limit: () => number) => {
  readInFlight = inFlight;
  readLimit = limit;
};

new Gauge({
  name: 'besh_upstream_concurrency_limit',
  help: 'The upstream concurrency this worker allows now (adaptive, at most MAX_WORKERS).',
  registers: [registry],
  collect() {
    this.set(readLimit());
  },
});

new Gauge({
  name: 'besh_upstream_in_flight',
  help: 'Upstream requests in flight in this worker process (at most MAX_WORKERS).',
  registers: [registry],
  collect() {
    this.set(readInFlight());
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
