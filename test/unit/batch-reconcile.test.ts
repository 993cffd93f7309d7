// A batch whose run has ended outside its normal path (terminated, timed out, failed, never started) can no
// longer finish by itself: BatchService fails it with the reason on GET, cancel and delete, and the periodic
// sweep fails every such batch. BatchService over SQLite with the fake engine.
import assert from 'node:assert/strict';
import { INITIAL_STATUS } from '../../src/batches/lifecycle';
import { moveBatch } from '../../src/batches/status-store';
import type { CreateBatchParams } from '../../src/batches/create-params';
import { BatchEntity } from '../../src/db/entities';
import { BatchService } from '../../src/services/batch-service';
import { Refused } from '../../src/services/errors';
import { EngineUnavailable, type RunState } from '../../src/services/ports';
import { failEndedRuns, START_GRACE_SECONDS } from '../../src/services/reconcile';
import { StatsService } from '../../src/services/stats-service';
import { openServiceFixture, type ServiceFixture } from '../support/service-fixture';

const OWNER = 'tenant_a';

const params = (inputFileId: string): CreateBatchParams => ({
  inputFileId,
  endpoint: '/v1/chat/completions',
  completionWindow: '24h',
  windowSeconds: 86400,
  metadata: null,
  outputExpiresAfterSeconds: null,
});

const TERMINATED: RunState = { state: 'closed', status: 'TERMINATED' };

describe('BatchService: a batch whose run has ended', () => {
  let f: ServiceFixture;
  beforeEach(async () => {
    f = await openServiceFixture();
  });
  afterEach(async () => f.close());

  const rowOf = (id: string) => f.db.getRepository(BatchEntity).findOneByOrFail({ id });
  const created = async () => f.batches.create(OWNER, params((await f.uploadBatchInput(OWNER)).id));
  /** As if the batch had been created `seconds` ago. */
  const age = (id: string, seconds: number) =>
    f.db.getRepository(BatchEntity).update({ id }, { createdAt: Math.floor(Date.now() / 1000) - seconds });
  const failedStats = async () =>
    (await new StatsService(f.db).lastDay(OWNER, Math.floor(Date.now() / 1000))).reduce(
      (n, b) => n + b.get('batches_failed'),
      0,
    );

  it('GET fails it with the reason, once, and counts it as failed', async () => {
    const batch = await created();
    f.engine.runs.set(batch.id, TERMINATED);

    const got = await f.batches.get(OWNER, batch.id);
    assert.equal(got.status, 'failed');
    assert.ok(got.failed_at);
    assert.deepEqual(got.errors?.data, [
      {
        code: 'batch_failed',
        message: 'The batch stopped before it finished: its run was terminated.',
        param: null,
        line: null,
      },
    ]);
    assert.deepEqual(await f.batches.unfinishedByStatus(OWNER), {
      validating: 0,
      in_progress: 0,
      finalizing: 0,
      cancelling: 0,
    });
    assert.equal(await failedStats(), 1);

    // Final now: later reads do not ask the engine again.
    await f.batches.get(OWNER, batch.id);
    assert.deepEqual(f.engine.described, [batch.id]);
  });

  it('asks the engine at most once per interval when a client polls a running batch', async () => {
    const polled = new BatchService(f.db, f.blobs, f.engine, 1000, 60_000);
    const batch = await polled.create(OWNER, params((await f.uploadBatchInput(OWNER)).id));
    for (let i = 0; i < 5; i++) assert.equal((await polled.get(OWNER, batch.id)).status, INITIAL_STATUS);
    assert.deepEqual(f.engine.described, [batch.id], 'one engine call for five polls');
    f.engine.runs.set(batch.id, TERMINATED);
    const cancelled = await polled.cancel(OWNER, batch.id).catch((e: unknown) => e);
    assert.ok(cancelled instanceof Refused, 'a cancel still asks at once');
    assert.equal((await rowOf(batch.id)).status, 'failed');
  });

  it('names how the run ended: timed out, failed, or closed without a final status', async () => {
    const cases: Array<[RunState, string]> = [
      [{ state: 'closed', status: 'TIMED_OUT' }, 'timed out'],
      [{ state: 'closed', status: 'FAILED' }, 'failed'],
      [{ state: 'closed', status: 'COMPLETED' }, 'ended without recording a final status'],
    ];
    for (const [run, how] of cases) {
      const batch = await created();
      await moveBatch(f.db, batch.id, 'in_progress');
      f.engine.runs.set(batch.id, run);
      const got = await f.batches.get(OWNER, batch.id);
      assert.equal(got.status, 'failed');
      assert.equal(got.errors?.data[0].message, `The batch stopped before it finished: its run ${how}.`);
    }
  });

  it('leaves a batch whose run is still open, and answers from the database when the engine does not', async () => {
    const batch = await created();
    assert.equal((await f.batches.get(OWNER, batch.id)).status, INITIAL_STATUS);

    f.engine.onDescribe = async () => {
      throw new EngineUnavailable();
    };
    assert.equal((await f.batches.get(OWNER, batch.id)).status, INITIAL_STATUS);
    assert.equal(f.engine.described.length, 2);
  });

  it('keeps what the workflow recorded when it finished while the engine was asked', async () => {
    const batch = await created();
    const validationErrors = [{ code: 'invalid_json_line', message: 'bad', param: null, line: 2 }];
    f.engine.onDescribe = async (id) => {
      await moveBatch(f.db, id, 'failed', { errors: validationErrors });
      return { state: 'closed', status: 'COMPLETED' };
    };
    const got = await f.batches.get(OWNER, batch.id);
    assert.equal(got.status, 'failed');
    assert.deepEqual(got.errors?.data, validationErrors);
  });

  it('waits for a start that may still be on its way before calling a missing run gone', async () => {
    const batch = await created();
    f.engine.runs.delete(batch.id); // the engine has never heard of it
    assert.equal((await f.batches.get(OWNER, batch.id)).status, INITIAL_STATUS, 'a fresh batch');

    await age(batch.id, START_GRACE_SECONDS + 1);
    const got = await f.batches.get(OWNER, batch.id);
    assert.equal(got.status, 'failed');
    assert.equal(
      got.errors?.data[0].message,
      'The batch stopped before it finished: its run no longer exists.',
    );
  });

  it('cancel refuses it as a finished batch, without asking the run', async () => {
    const batch = await created();
    f.engine.runs.set(batch.id, TERMINATED);
    await assert.rejects(f.batches.cancel(OWNER, batch.id), (err: unknown) => {
      assert.ok(err instanceof Refused);
      assert.deepEqual(
        [err.kind, err.code, err.message],
        ['conflict', 'batch_not_cancellable', 'Cannot cancel a batch whose status is failed.'],
      );
      return true;
    });
    assert.deepEqual(f.engine.cancelled, []);
    assert.equal((await rowOf(batch.id)).status, 'failed');
  });

  it('delete removes it without cancelling or waiting, and its input file can then be deleted', async () => {
    const batch = await created();
    await moveBatch(f.db, batch.id, 'in_progress');
    f.engine.runs.set(batch.id, TERMINATED);
    await assert.rejects(f.files.delete(OWNER, batch.input_file_id), /still running/);

    await f.batches.delete(OWNER, batch.id);
    assert.deepEqual([f.engine.cancelled, f.engine.waited], [[], []]);
    assert.equal(await f.db.getRepository(BatchEntity).countBy({ id: batch.id }), 0);
    await f.files.delete(OWNER, batch.input_file_id);
  });

  it('a start that did not answer in time leaves no batch, and the run is abandoned', async () => {
    const input = await f.uploadBatchInput(OWNER);
    f.engine.refuseStart = new EngineUnavailable();
    await assert.rejects(f.batches.create(OWNER, params(input.id)), EngineUnavailable);
    assert.equal(await f.db.getRepository(BatchEntity).count(), 0);
    assert.equal(f.engine.abandoned.length, 1);

    // A start the engine refused outright started nothing: there is nothing to abandon.
    f.engine.refuseStart = new Error('workflow already started');
    await assert.rejects(f.batches.create(OWNER, params(input.id)), /already started/);
    assert.equal(f.engine.abandoned.length, 1);
  });

  it('the sweep fails every unfinished batch whose run has ended, and only those', async () => {
    const [terminated, running, finished, gone, young] = [
      await created(),
      await created(),
      await created(),
      await created(),
      await created(),
    ];
    f.engine.runs.set(terminated.id, TERMINATED);
    await moveBatch(f.db, finished.id, 'failed');
    f.engine.runs.set(finished.id, TERMINATED);
    for (const b of [gone, young]) f.engine.runs.delete(b.id);
    await age(gone.id, START_GRACE_SECONDS + 1);

    let pages = 0;
    assert.equal(await failEndedRuns(f.db, f.engine, () => pages++), 2);
    const statuses = await Promise.all(
      [terminated, running, finished, gone, young].map(async (b) => (await rowOf(b.id)).status),
    );
    assert.deepEqual(statuses, ['failed', INITIAL_STATUS, 'failed', 'failed', INITIAL_STATUS]);
    assert.ok(!f.engine.described.includes(finished.id), 'a finished batch is not asked about');
    assert.equal(pages, 1);
    assert.equal(await failedStats(), 2);
  });
});
