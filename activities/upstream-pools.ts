import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { LessThan, type DataSource } from 'typeorm';
import { poolServing, type Config, type PoolConfig } from '../src/config';
import { PoolStatsEntity } from '../src/db/entities';
import { recordAttempt, trackPools } from '../src/metrics/registry';
import { AdaptiveLimit } from './adaptive-limit';
import { FairLimiter } from './fair-limiter';
import { ServerQueueWatch } from './server-queue';
import { Upstream } from './upstream';

/** The adaptive limit's measurement window. */
const ADAPT_EVERY_MS = 250;
/** How often a worker process stores its pools' numbers for the dashboard (GET /v1/dashboard/pools). */
const STATS_EVERY_MS = 5_000;
/** Rows of worker processes gone this long are deleted (the dashboard reads only fresh ones anyway). */
const STATS_KEPT_MS = 60 * 60_000;

/** One pool as this worker process drives it: its own connections, adaptive limit and fair share. */
export interface Pool {
  readonly config: PoolConfig;
  readonly upstream: Upstream;
  readonly limiter: FairLimiter;
  readonly adaptive: AdaptiveLimit | null;
  readonly servers: ServerQueueWatch | null;
  /** Attempts answered since the process started, and their latency: the dashboard's rates. */
  readonly counts: { requests: number; latencyMsSum: number };
}

/**
 * Every pool of UPSTREAMS (or the one of VLLM_BASE_URL), each with its own Upstream, AdaptiveLimit, FairLimiter
 * and server-queue watch: a slow or broken pool fills only its own slots, so it never holds back another pool's
 * batches.
 */
export class UpstreamPools {
  private readonly pools = new Map<string, Pool>();
  private timers: NodeJS.Timeout[] = [];
  private readonly startedAt = Date.now();
  /** Names this process's rows in pool_stats. */
  readonly instanceId = `${os.hostname().slice(0, 40)}-${process.pid}-${randomBytes(3).toString('hex')}`;

  /** `processes`: the worker processes of this host, which share each pool's MAX_WORKERS. */
  constructor(config: Config, processes = 1) {
    for (const pc of config.pools) {
      const slots = Math.max(1, Math.floor(pc.maxWorkers / processes));
      // Adaptive mode finds the pool's best concurrency itself, up to the slots, starting from a quarter of them
      // so that a short batch on a big pool is not all ramp.
      const adaptive =
        config.concurrencyMode === 'adaptive'
          ? new AdaptiveLimit({
              initial: Math.max(Math.min(32, slots), Math.floor(slots / 4)),
              max: slots,
              onChange: (l) => limiter.setLimit(l),
            })
          : null;
      const limiter = new FairLimiter(adaptive?.limit ?? slots, () => adaptive?.started());
      const counts = { requests: 0, latencyMsSum: 0 };
      const upstream = new Upstream({
        baseUrl: pc.urls,
        apiKey: pc.apiKey,
        timeoutMs: config.requestTimeoutMs,
        maxRetries: config.requestMaxRetries,
        onAttempt: ({ outcome, statusCode, latencyMs, key }) => {
          counts.requests++;
          counts.latencyMsSum += latencyMs;
          recordAttempt(pc.name, outcome, statusCode, latencyMs / 1000);
          adaptive?.record({
            latencyMs,
            overloaded: outcome === 'timeout' || statusCode === 429 || statusCode === 503,
            key,
          });
        },
      });
      const servers =
        adaptive && pc.metricsUrls.length > 0
          ? new ServerQueueWatch(pc.metricsUrls, (q) => adaptive.observeServers(q), undefined, pc.name)
          : null;
      this.pools.set(pc.name, { config: pc, upstream, limiter, adaptive, servers, counts });
    }
    trackPools(() =>
      this.all().map((p) => ({ pool: p.config.name, inFlight: p.limiter.active, limit: p.limiter.limit })),
    );
  }

  all(): Pool[] {
    return [...this.pools.values()];
  }

  get(name: string): Pool | undefined {
    return this.pools.get(name);
  }

  /** The pool serving `model` (validation refused every batch whose model no pool serves). */
  forModel(model: string): Pool | undefined {
    const pc = poolServing(
      this.all().map((p) => p.config),
      model,
    );
    return pc && this.pools.get(pc.name);
  }

  /** Starts the adaptive limits' windows and the server-queue watches; with `db`, the dashboard's pool rows. */
  start(db?: DataSource): void {
    for (const { adaptive, limiter, servers } of this.pools.values()) {
      // Demand: requests wait for a slot, or nearly every slot is taken (between two chunks of a batch nothing
      // waits for a moment, and a limit that only counted waiters could sit above what the pool needs for good).
      const demand = () => limiter.waiting > 0 || limiter.active >= 0.9 * limiter.limit;
      if (adaptive) this.timers.push(setInterval(() => adaptive.tick(demand()), ADAPT_EVERY_MS));
      servers?.start();
    }
    if (db) {
      const report = () => void this.report(db).catch(() => undefined);
      report();
      this.timers.push(setInterval(report, STATS_EVERY_MS));
    }
  }

  /** What report() stored last, per pool: the `recent` numbers are the difference. */
  private reported = new Map<string, { requests: number; latencyMsSum: number; at: number }>();

  /** Upserts this process's row of every pool; a failed write is only a gap in the dashboard. */
  async report(db: DataSource): Promise<void> {
    const now = Date.now();
    const rows = this.all().map(({ config, limiter, counts }) => {
      const latencyMsSum = Math.round(counts.latencyMsSum);
      const last = this.reported.get(config.name) ?? { requests: 0, latencyMsSum: 0, at: this.startedAt };
      this.reported.set(config.name, { requests: counts.requests, latencyMsSum, at: now });
      return {
        workerId: this.instanceId,
        pool: config.name,
        inFlight: limiter.active,
        limit: limiter.limit,
        requests: counts.requests,
        latencyMsSum,
        recentRequests: counts.requests - last.requests,
        recentLatencyMsSum: latencyMsSum - last.latencyMsSum,
        recentMs: Math.max(1, now - last.at),
        updatedAt: now,
      };
    });
    const repo = db.getRepository(PoolStatsEntity);
    await repo.upsert(rows, ['workerId', 'pool']);
    await repo.delete({ updatedAt: LessThan(now - STATS_KEPT_MS) });
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    for (const p of this.pools.values()) p.servers?.close();
    await Promise.all(this.all().map((p) => p.upstream.close()));
  }
}
