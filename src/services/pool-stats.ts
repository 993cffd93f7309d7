import { MoreThanOrEqual, type DataSource } from 'typeorm';
import { PoolStatsEntity } from '../db/entities';

/** Worker rows older than this are of processes that stopped (they write every 5 s). */
const FRESH_MS = 15_000;

/** One upstream pool as the dashboard shows it, summed over the worker processes that reported lately. */
export interface PoolView {
  pool: string;
  /** Worker processes whose numbers are in this row. */
  workers: number;
  in_flight: number;
  limit: number;
  /** Upstream attempts a second over the workers' last reporting interval (about 5 s); retries count. */
  requests_per_second: number;
  /** Their mean latency; null when none answered in that interval. */
  mean_latency_ms: number | null;
  /** Attempts since those processes started. */
  requests_total: number;
}

/** Each upstream pool's in-flight requests, limit, rate and latency, from the rows the workers upsert. */
export class PoolStatsService {
  constructor(
    private readonly db: DataSource,
    /** The configured pools: each has a row, idle ones zero, even before a worker reported. */
    private readonly pools: readonly string[],
    private readonly clock: () => number = Date.now,
  ) {}

  async current(): Promise<PoolView[]> {
    const rows = await this.db
      .getRepository(PoolStatsEntity)
      .find({ where: { updatedAt: MoreThanOrEqual(this.clock() - FRESH_MS) } });
    const views = new Map<string, PoolView & { latencySum: number; recent: number }>();
    const viewOf = (pool: string) => {
      let v = views.get(pool);
      if (!v) {
        v = {
          pool,
          workers: 0,
          in_flight: 0,
          limit: 0,
          requests_per_second: 0,
          mean_latency_ms: null,
          requests_total: 0,
          latencySum: 0,
          recent: 0,
        };
        views.set(pool, v);
      }
      return v;
    };
    for (const pool of this.pools) viewOf(pool);
    for (const r of rows) {
      const v = viewOf(r.pool);
      v.workers++;
      v.in_flight += r.inFlight;
      v.limit += r.limit;
      v.requests_total += r.requests;
      v.requests_per_second += (1000 * r.recentRequests) / r.recentMs;
      v.recent += r.recentRequests;
      v.latencySum += r.recentLatencyMsSum;
    }
    return [...views.values()].map(({ latencySum, recent, ...v }) => ({
      ...v,
      requests_per_second: Math.round(v.requests_per_second * 10) / 10,
      mean_latency_ms: recent > 0 ? Math.round(latencySum / recent) : null,
    }));
  }
}
