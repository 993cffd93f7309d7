import assert from 'node:assert/strict';
import OpenAI from 'openai';
import type { Batch, BatchCreateParams } from 'openai/resources/batches';
import type { DataSource } from 'typeorm';
import { ADMISSION_OVERDUE_SECONDS, admitBatch } from '../../src/batches/status-store';
import { INITIAL_STATUS } from '../../src/batches/lifecycle';
import { admissionScope } from '../../activities/admission';
import type { PoolConfig } from '../../src/config';
import { openDatabase } from '../../src/db/data-source';
import { BatchEntity, type BatchRow } from '../../src/db/entities';
import type { BatchPriority } from '../../src/shared/openai';
import { batchLines, toJsonl, uploadBatchFile, waitForBatch } from '../support/batches';
import { createTestDatabase, testDbKind, type TestDatabase } from '../support/database';
import { assertOpenApi } from '../support/openapi';
import { startStack, type Stack } from '../support/stack';

/** The SDK's Batch plus BESH's extension field. */
type PrioritizedBatch = Batch & { priority: BatchPriority };

/** Creates a batch as an SDK user would: `priority` rides along in the body (Python: `extra_body`). */
async function createPrioritized(
  openai: OpenAI,
  content: string,
  window: string,
  priority?: unknown,
): Promise<PrioritizedBatch> {
  const file = await uploadBatchFile(openai, content);
  const params = {
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: window,
    ...(priority === undefined ? {} : { priority }),
  } as BatchCreateParams;
  return (await openai.batches.create(params)) as PrioritizedBatch;
}

/** A database of its own for the enclosing describe, migrated; `db()` is it once `before` has run. */
function freshDatabase(): () => DataSource {
  let database: TestDatabase;
  let db: DataSource;
  before(async () => {
    database = await createTestDatabase();
    db = await openDatabase({
      databaseUrl: database.env.DATABASE_URL,
      sqlitePath: database.env.SQLITE_PATH ?? '',
    });
  });
  after(async () => {
    await db?.destroy();
    await database?.drop();
  });
  return () => db;
}

describe('Priorities and deadlines', function () {
  this.timeout(120_000);

  describe(`admission order (${testDbKind})`, () => {
    const database = freshDatabase();

    it('admits by priority, then earliest deadline, then creation; an overdue batch before all of them', async () => {
      const now = Math.floor(Date.now() / 1000);
      const waiting = (
        id: string,
        priority: BatchPriority,
        createdAgo: number,
        window: number,
      ): Partial<BatchRow> => ({
        id,
        owner: 'tenant',
        endpoint: '/v1/chat/completions',
        inputFileId: 'file-x',
        completionWindow: `${window}s`,
        status: INITIAL_STATUS,
        createdAt: now - createdAgo,
        expiresAt: now - createdAgo + window,
        total: 10,
        priority,
      });
      const day = 86400;
      // Inserted oldest first: first-come admission would take them in this order.
      await database()
        .getRepository(BatchEntity)
        .insert([
          waiting('batch_overdue_low', 'low', ADMISSION_OVERDUE_SECONDS + 60, day),
          waiting('batch_low', 'low', 50, 3600),
          waiting('batch_normal_late', 'normal', 40, day),
          waiting('batch_normal_early', 'normal', 30, 3600),
          waiting('batch_normal_early_2', 'normal', 29, 3600),
          waiting('batch_high_late', 'high', 20, day),
          waiting('batch_high_early', 'high', 10, 7200),
        ]);
      const expected = [
        'batch_overdue_low', // waited over ADMISSION_OVERDUE_SECONDS: nothing newer goes before it
        'batch_high_early',
        'batch_high_late',
        'batch_normal_early',
        'batch_normal_early_2', // the same deadline within a second: created later
        'batch_normal_late',
        'batch_low', // the earliest deadline of all, but the lowest priority
      ];
      const remaining = new Set(expected);
      for (const next of expected) {
        for (const other of remaining) {
          if (other !== next)
            assert.equal(await admitBatch(database(), other, 100), 'queued', `${other} before ${next}`);
        }
        assert.equal(await admitBatch(database(), next, 100), 'admitted', next);
        remaining.delete(next);
      }
    });
  });

  describe(`admission per pool (${testDbKind})`, () => {
    const database = freshDatabase();

    it("counts the slots of each pool apart: a stalled pool's batches keep no other pool's waiting", async () => {
      const now = Math.floor(Date.now() / 1000);
      const row = (id: string, model: string, createdAgo: number, status: BatchRow['status']) => ({
        id,
        owner: 'tenant',
        endpoint: '/v1/chat/completions',
        inputFileId: 'file-x',
        completionWindow: '24h',
        status,
        model,
        createdAt: now - createdAgo,
        expiresAt: now - createdAgo + 86400,
        inProgressAt: status === 'in_progress' ? now - createdAgo : null,
        total: 10,
        priority: 'normal' as const,
      });
      await database()
        .getRepository(BatchEntity)
        .insert([
          row('batch_a_running', 'model-a', 50, 'in_progress'),
          row('batch_a_waiting', 'model-a', 40, INITIAL_STATUS),
          row('batch_b_waiting', 'model-b', 30, INITIAL_STATUS),
          row('batch_other_waiting', 'model-c', 20, INITIAL_STATUS),
        ]);
      const pools: PoolConfig[] = [
        {
          name: 'a',
          urls: ['http://a/v1'],
          apiKey: undefined,
          models: ['model-a'],
          metricsUrls: [],
          maxWorkers: 8,
        },
        {
          name: 'b',
          urls: ['http://b/v1'],
          apiKey: undefined,
          models: ['model-b'],
          metricsUrls: [],
          maxWorkers: 8,
        },
        {
          name: 'rest',
          urls: ['http://c/v1'],
          apiKey: undefined,
          models: [],
          metricsUrls: [],
          maxWorkers: 8,
        },
      ];
      const admit = (id: string, model: string) =>
        admitBatch(database(), id, 1, admissionScope(pools, model));
      // Pool a's one slot is taken: its next batch waits, and the older one holds back no other pool's.
      assert.equal(await admit('batch_a_waiting', 'model-a'), 'queued');
      assert.equal(await admit('batch_b_waiting', 'model-b'), 'admitted');
      assert.equal(
        await admit('batch_other_waiting', 'model-c'),
        'admitted',
        'the catch-all pool counts apart',
      );
      // With one pool for everything, the same slot count is shared by all.
      assert.equal(
        await admitBatch(database(), 'batch_a_waiting', 3, admissionScope(pools.slice(2), 'model-a')),
        'queued',
      );
    });
  });

  describe('a high-priority batch behind a big low-priority one (the official Node SDK, the real stack)', () => {
    // Upstream slots are the bottleneck: the worker's slots match the simulator's, so every request waits in the
    // worker's FairLimiter, not in the simulator's queue. 8 slots of 60 ms: about 130 requests a second.
    const SLOTS = 8;
    const HIGH = 1000;
    const BIG = 20_000;
    let s: Stack;
    before(async () => {
      s = await startStack({
        env: { COMPLETION_WINDOW_MIN_SECONDS: '3600', CONCURRENCY_MODE: 'fixed', MAX_WORKERS: String(SLOTS) },
        simulator: { capacity: SLOTS, baseLatencyMs: 60 },
      });
    });
    after(async () => s?.close());

    /** Creates the high batch and waits for it; answers how long it took and the big batch's share meanwhile. */
    async function runHigh(big: PrioritizedBatch | null) {
      const started = Date.now();
      const high = await createPrioritized(s.openai, toJsonl(batchLines(HIGH)), '1h', 'high');
      assert.equal(high.priority, 'high');
      assertOpenApi('Batch', high);
      const completedOf = async (id: string) =>
        (await s.openai.batches.retrieve(id)).request_counts!.completed;
      // The window in which both batches compete: from the high batch's first answers to its last.
      const first = await waitForBatch(s.openai, high.id, {
        until: (b) => (b.request_counts?.completed ?? 0) > 0,
      });
      const bigAtStart = big ? await completedOf(big.id) : 0;
      const highAtStart = first.request_counts!.completed;
      await waitForBatch(s.openai, high.id, { until: (b) => b.request_counts?.completed === HIGH });
      const bigAtEnd = big ? await completedOf(big.id) : 0;
      const done = await waitForBatch(s.openai, high.id);
      assert.equal(done.status, 'completed');
      return {
        seconds: (Date.now() - started) / 1000,
        highAdvance: HIGH - highAtStart,
        bigAdvance: bigAtEnd - bigAtStart,
      };
    }

    it('finishes the 1 h high batch first while the 24 h low batch keeps its minimum share', async function () {
      const alone = await runHigh(null);

      const big = await createPrioritized(s.openai, toJsonl(batchLines(BIG)), '24h', 'low');
      assert.equal(big.priority, 'low');
      await waitForBatch(s.openai, big.id, {
        until: (b) => b.status === 'in_progress' && (b.request_counts?.completed ?? 0) > 0,
      });
      const behind = await runHigh(big);

      const stillRunning = (await s.openai.batches.retrieve(big.id)) as PrioritizedBatch;
      assert.equal(stillRunning.status, 'in_progress', 'the big batch created first is still running');
      assert.ok(stillRunning.request_counts!.completed < BIG);
      // Low's share against high is 1 : 8 of the slots (1/9): about 1/8 of high's answers, never starved.
      // An even split (no priorities) would give it about as many as high.
      const ratio = behind.bigAdvance / behind.highAdvance;
      console.log(
        `      high batch of ${HIGH}: ${alone.seconds.toFixed(1)} s alone, ${behind.seconds.toFixed(1)} s behind ` +
          `the low batch of ${BIG}, which answered ${behind.bigAdvance} requests meanwhile (${ratio.toFixed(3)} ` +
          `of high's ${behind.highAdvance})`,
      );
      assert.ok(ratio >= 1 / 16, `the low batch got ${ratio.toFixed(3)} of high's answers, below its share`);
      assert.ok(
        ratio <= 1 / 3,
        `the low batch got ${ratio.toFixed(3)} of high's answers: high is not preferred`,
      );

      const cancelled = await s.openai.batches.cancel(big.id);
      assert.equal((cancelled as PrioritizedBatch).priority, 'low');
      assert.equal((await waitForBatch(s.openai, big.id)).status, 'cancelled');
    });

    it('answers priority on every batch object, normal by default, and refuses an unknown one', async () => {
      const plain = await createPrioritized(s.openai, toJsonl(batchLines(2)), '24h');
      assert.equal(plain.priority, 'normal');
      const listed = (await s.openai.batches.list({ limit: 5 })).data as PrioritizedBatch[];
      assert.equal(listed.find((b) => b.id === plain.id)?.priority, 'normal');
      for (const b of listed) assertOpenApi('Batch', b);

      const before = (await s.openai.batches.list({ limit: 100 })).data.length;
      for (const priority of ['urgent', 3]) {
        await assert.rejects(createPrioritized(s.openai, toJsonl(batchLines(2)), '24h', priority), (err) => {
          assert.ok(err instanceof OpenAI.APIError, String(err));
          assert.equal(err.status, 400);
          assert.deepEqual(
            [err.type, err.param, err.code],
            ['invalid_request_error', 'priority', 'invalid_value'],
          );
          return true;
        });
      }
      assert.equal((await s.openai.batches.list({ limit: 100 })).data.length, before, 'no batch was created');
      await waitForBatch(s.openai, plain.id);
    });
  });
});
