import type { DataSource } from 'typeorm';
import { BUCKET_SECONDS, bucketOf, STAT_COLUMNS, type StatColumn } from '../stats/columns';

const DAY = 24 * 3600;

export interface Bucket {
  /** Unix seconds. */
  start: number;
  get(column: StatColumn): number;
}

/** The 15-minute stats buckets the dashboard charts and cards read, never batches or lines. */
export class StatsService {
  constructor(private readonly db: DataSource) {}

  /** The owner's buckets of the last 24 hours up to `now` (unix seconds), oldest first, empty ones filled in. */
  lastDay(owner: string, now: number): Promise<Bucket[]> {
    return this.recent(owner, now, DAY);
  }

  /** The owner's buckets of the last `seconds` (a multiple of the bucket) up to `now`, oldest first, filled in. */
  async recent(owner: string, now: number, seconds: number): Promise<Bucket[]> {
    const since = bucketOf(now) - seconds + BUCKET_SECONDS;
    const rows: Array<Record<string, string | number>> = await this.db
      .createQueryBuilder()
      .select(['bucket_start', ...STAT_COLUMNS])
      .from('stats_buckets', 's')
      .where('owner = :owner AND bucket_start >= :since', { owner, since })
      .getRawMany();
    const byStart = new Map(rows.map((r) => [Number(r.bucket_start), r]));
    return Array.from({ length: seconds / BUCKET_SECONDS }, (_, i) => {
      const start = since + i * BUCKET_SECONDS;
      const r = byStart.get(start);
      return { start, get: (c: StatColumn) => Number(r?.[c] ?? 0) };
    });
  }
}
