import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DataSource } from 'typeorm';
import { UpstreamPools } from '../../activities/upstream-pools';
import { loadConfig } from '../../src/config';
import { openDatabase } from '../../src/db/data-source';
import { PoolStatsEntity, type PoolStatsRow } from '../../src/db/entities';
import { PoolStatsService } from '../../src/services/pool-stats';

describe('Pool stats: the workers’ rows, summed for the dashboard', () => {
  let dir: string;
  let db: DataSource;
  const now = 1_800_000_000_000;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'besh-pool-stats-'));
    db = await openDatabase({ databaseUrl: undefined, sqlitePath: path.join(dir, 'besh.db') });
  });
  after(async () => {
    await db.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => db.getRepository(PoolStatsEntity).clear());

  const row = (workerId: string, pool: string, r: Partial<PoolStatsRow>): PoolStatsRow => ({
    workerId,
    pool,
    inFlight: 0,
    limit: 8,
    requests: 0,
    latencyMsSum: 0,
    recentRequests: 0,
    recentLatencyMsSum: 0,
    recentMs: 5000,
    updatedAt: now,
    ...r,
  });

  it('sums the fresh rows per pool, leaves out stopped workers, and lists an idle configured pool', async () => {
    await db.getRepository(PoolStatsEntity).save([
      row('w1', 'chat', { inFlight: 5, requests: 900, recentRequests: 100, recentLatencyMsSum: 20_000 }),
      row('w2', 'chat', {
        inFlight: 3,
        requests: 300,
        recentRequests: 50,
        recentLatencyMsSum: 25_000,
        recentMs: 2500,
      }),
      // A worker gone a minute ago: its last numbers no longer count.
      row('w3', 'chat', { inFlight: 64, limit: 64, requests: 5000, updatedAt: now - 60_000 }),
    ]);
    const stats = new PoolStatsService(db, ['chat', 'embed'], () => now);
    assert.deepEqual(await stats.current(), [
      {
        pool: 'chat',
        workers: 2,
        in_flight: 8,
        limit: 16,
        requests_per_second: 40, // 100 in 5 s + 50 in 2.5 s
        mean_latency_ms: 300, // 45,000 ms over 150 answers
        requests_total: 1200,
      },
      {
        pool: 'embed',
        workers: 0,
        in_flight: 0,
        limit: 0,
        requests_per_second: 0,
        mean_latency_ms: null,
        requests_total: 0,
      },
    ]);
  });

  it("a worker's report upserts one row per pool, with the attempts since its previous report", async () => {
    const upstreams = {
      pools: {
        chat: { urls: ['http://127.0.0.1:9/v1'], models: ['c'] },
        embed: { urls: ['http://127.0.0.1:9/v1'], models: ['e'] },
      },
    };
    const pools = new UpstreamPools(loadConfig({ UPSTREAMS: JSON.stringify(upstreams), MAX_WORKERS: '16' }));
    try {
      const chat = pools.get('chat')!;
      Object.assign(chat.counts, { requests: 10, latencyMsSum: 1000 });
      await pools.report(db);
      Object.assign(chat.counts, { requests: 25, latencyMsSum: 4000 });
      await pools.report(db);
      const rows = await db.getRepository(PoolStatsEntity).find({ order: { pool: 'ASC' } });
      assert.deepEqual(
        rows.map((r) => [
          r.pool,
          r.requests,
          r.latencyMsSum,
          r.recentRequests,
          r.recentLatencyMsSum,
          r.limit,
        ]),
        [
          ['chat', 25, 4000, 15, 3000, 16],
          ['embed', 0, 0, 0, 0, 16],
        ],
      );
      assert.ok(rows.every((r) => r.workerId === pools.instanceId));
    } finally {
      await pools.close();
    }
  });
});
