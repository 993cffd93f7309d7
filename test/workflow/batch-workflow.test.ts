// The batch workflow's edge cases against a real Temporal server with fake activities: every assertion is on
// what the fakes recorded, the workflow's result, the batch's final status and the workflow's history.
import type { WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Activities } from '../../activities';
import { cancelUpdate } from '../../src/contract/batch-workflow';
import { batchWorkflow } from '../../workflows';
import { until } from '../support/processes';
import { fakeActivities, goodPlan, workUntilCancelled, type FakeActivities } from './fake-activities';
import { FakeBatchStore } from './fake-batch-store';
import { startBatch, startTestbed, withWorker, type Testbed } from './testbed';

const { EventType } = temporal.api.enums.v1;
type History = temporal.api.history.v1.IHistory;
type BatchHandle = WorkflowHandle<typeof batchWorkflow>;

describe('batch workflow (fake activities)', function () {
  this.timeout(60_000);
  let tb: Testbed;

  before(async function () {
    this.timeout(120_000);
    tb = await startTestbed();
  });
  after(async () => tb?.env.teardown());

  /** A batch as the API creates it: its row first, then its workflow. */
  function newBatch(store: FakeBatchStore): string {
    const batchId = `batch_${randomUUID()}`;
    store.create(batchId);
    return batchId;
  }

  const start = (taskQueue: string, batchId: string, expiresAtMs?: number): Promise<BatchHandle> =>
    startBatch(tb, taskQueue, batchId, expiresAtMs);

  /** Runs the batch's workflow to its end with these activities: its result and its history. */
  const runToEnd = (activities: Activities, batchId: string) =>
    withWorker(tb, activities, async (q) => {
      const handle = await start(q, batchId);
      return { result: await handle.result(), history: await handle.fetchHistory() };
    });

  /** Runs the batch's workflow, cancels it with the update once `ready` resolves, and runs it to its end. */
  const cancelToEnd = (activities: Activities, batchId: string, ready: () => Promise<unknown>) =>
    withWorker(tb, activities, async (q) => {
      const handle = await start(q, batchId);
      await ready();
      const answer = await handle.executeUpdate(cancelUpdate);
      return { answer, result: await handle.result(), history: await handle.fetchHistory() };
    });

  const statuses = (fake: FakeActivities) => fake.calls.setStatus.map((c) => c.status);
  const startedChunks = (fake: FakeActivities) =>
    fake.calls.processChunk.map((c) => c.chunk.index).sort((a, b) => a - b);
  const count = (history: History, type: temporal.api.enums.v1.EventType) =>
    (history.events ?? []).filter((e) => e.eventType === type).length;

  /** The attempt number of each started run of `activity`, as the history records it. */
  function attempts(history: History, activity: keyof Activities): number[] {
    const events = history.events ?? [];
    const scheduled = new Set(
      events
        .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activity)
        .map((e) => String(e.eventId)),
    );
    return events
      .map((e) => e.activityTaskStartedEventAttributes)
      .filter((a) => a && scheduled.has(String(a.scheduledEventId)))
      .map((a) => a!.attempt!);
  }

  /** Four chunks, two at a time: chunk 0 answers at once, every other chunk works until it is cancelled. */
  function midRunFakes(store: FakeBatchStore): FakeActivities {
    return fakeActivities(store, {
      validation: goodPlan(4, 2),
      processChunk: async ({ chunk }) =>
        chunk.index === 0 ? { completed: chunk.lines, failed: 0 } : workUntilCancelled(),
    });
  }

  /** Resolves once chunks 1 and 2 are running (chunk 2 starts when chunk 0 frees its place in the window). */
  const whileChunksRun = (fake: FakeActivities) =>
    until('chunks 1 and 2 to run', () =>
      ['processChunk 1', 'processChunk 2'].every((c) => fake.timeline.includes(c)),
    );

  /** The parts of a mid-run stop that cancel, expiry and a cancel from outside share. */
  function assertStoppedMidRun(fake: FakeActivities, missingCode: string) {
    assert.deepEqual(startedChunks(fake), [0, 1, 2], 'chunk 3 never started');
    const finalizeAt = fake.timeline.indexOf('finalizeBatch');
    for (const chunk of [1, 2]) {
      const cancelledAt = fake.timeline.indexOf(`processChunk ${chunk} cancelled`);
      assert.ok(cancelledAt >= 0, `chunk ${chunk} was cancelled`);
      assert.ok(cancelledAt < finalizeAt, `chunk ${chunk} stopped before finalization read its parts`);
    }
    assert.equal(fake.calls.finalizeBatch.length, 1);
    const [finalize] = fake.calls.finalizeBatch;
    assert.deepEqual(finalize.incomplete, [1, 2, 3]);
    assert.equal(finalize.missing?.code, missingCode);
    assert.equal(fake.calls.cleanupBatch.length, 1);
  }

  it('a file that fails validation records failed with its errors and runs nothing else', async () => {
    const store = new FakeBatchStore(1);
    const errors = [{ code: 'invalid_request', message: 'bad line', param: 'body', line: 3 }];
    const fake = fakeActivities(store, { validation: { ok: false, errors } });
    const batchId = newBatch(store);
    const result = await withWorker(tb, fake.activities, async (q) => (await start(q, batchId)).result());

    assert.equal(result, 'failed');
    assert.equal(store.statusOf(batchId), 'failed');
    assert.deepEqual(fake.calls.setStatus, [{ batchId, status: 'failed', errors }]);
    // No chunk ran, so there is no scratch state to clean up either.
    assert.deepEqual(fake.timeline, ['validateInput', 'setStatus failed']);
  });

  it('cancel while waiting for admission: no chunk runs, every chunk is reported cancelled', async () => {
    const store = new FakeBatchStore(0); // no slot ever frees
    const fake = fakeActivities(store);
    const batchId = newBatch(store);
    const { answer, result, history } = await cancelToEnd(fake.activities, batchId, async () => {
      await until('admission to be retried', () => fake.calls.admitBatch.length >= 2);
    });

    assert.equal(answer, 'cancelling');
    assert.equal(result, 'cancelled');
    assert.equal(store.statusOf(batchId), 'cancelled');
    assert.deepEqual(statuses(fake), ['validating', 'cancelling', 'cancelled']);
    assert.equal(fake.calls.processChunk.length, 0);
    assert.deepEqual(fake.calls.finalizeBatch[0].incomplete, [0, 1, 2]);
    assert.equal(fake.calls.finalizeBatch[0].missing?.code, 'batch_cancelled');
    assert.equal(
      count(history, EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED),
      1,
      'admission cancelled',
    );
  });

  it('a cancel whose cancelling write fails once still leaves the batch cancelled', async () => {
    const store = new FakeBatchStore(0); // no slot ever frees
    let failures = 0;
    const fake = fakeActivities(store, {
      setStatus: async ({ batchId, status, total }) => {
        if (status === 'cancelling' && failures++ === 0) throw new Error('database unavailable');
        return store.move(batchId, status, { total });
      },
    });
    const batchId = newBatch(store);
    const result = await withWorker(tb, fake.activities, async (q) => {
      const handle = await start(q, batchId);
      await until('admission to be retried', () => fake.calls.admitBatch.length >= 2);
      await handle.executeUpdate(cancelUpdate);
      return handle.result();
    });

    assert.equal(result, 'cancelled');
    assert.equal(store.statusOf(batchId), 'cancelled', 'the final status is written after cancelling');
    assert.deepEqual(statuses(fake), ['validating', 'cancelling', 'cancelling', 'cancelled']);
  });

  it('cancel mid-run (the cancel update): chunks stop, then finalization reports the rest', async () => {
    const store = new FakeBatchStore(1);
    const fake = midRunFakes(store);
    const batchId = newBatch(store);
    const { answer, result, history } = await cancelToEnd(fake.activities, batchId, async () => {
      await whileChunksRun(fake);
    });

    assert.equal(answer, 'cancelling');
    assert.equal(result, 'cancelled');
    assert.equal(store.statusOf(batchId), 'cancelled');
    assert.deepEqual(statuses(fake), ['validating', 'cancelling', 'cancelled']);
    assertStoppedMidRun(fake, 'batch_cancelled');
    assert.equal(count(history, EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED), 2);
    assert.equal(count(history, EventType.EVENT_TYPE_TIMER_CANCELED), 1, 'the expiry timer is stopped');
  });

  it('cancel from outside (as the Temporal Web UI does) passes through cancelling to cancelled', async () => {
    const store = new FakeBatchStore(1);
    const fake = midRunFakes(store);
    const batchId = newBatch(store);
    const { result, history } = await withWorker(tb, fake.activities, async (q) => {
      const handle = await start(q, batchId);
      await whileChunksRun(fake);
      await handle.cancel();
      return { result: await handle.result(), history: await handle.fetchHistory() };
    });

    assert.equal(result, 'cancelled');
    assert.equal(store.statusOf(batchId), 'cancelled');
    assert.deepEqual(statuses(fake), ['validating', 'cancelling', 'cancelled']);
    assertStoppedMidRun(fake, 'batch_cancelled');
    assert.equal(count(history, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED), 1);
    assert.equal(
      count(history, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED),
      1,
      'the run ends normally',
    );
  });

  it('expiry mid-run: running chunks are cancelled and the batch expires without finalizing', async () => {
    const store = new FakeBatchStore(1);
    const fake = midRunFakes(store);
    const batchId = newBatch(store);
    // The window closes a moment after the start, while chunks 1 and 2 work until they are cancelled.
    const { result, history } = await withWorker(tb, fake.activities, async (q) => {
      const handle = await start(q, batchId, Date.now() + 3_000);
      return { result: await handle.result(), history: await handle.fetchHistory() };
    });

    assert.equal(result, 'expired');
    assert.equal(store.statusOf(batchId), 'expired');
    assert.deepEqual(statuses(fake), ['validating', 'expired']);
    assertStoppedMidRun(fake, 'batch_expired');
    assert.equal(count(history, EventType.EVENT_TYPE_TIMER_FIRED), 1, 'the expiry timer fired');
  });

  it('a chunk that runs out of retries is left incomplete and the batch still completes', async () => {
    const store = new FakeBatchStore(1);
    const fake = fakeActivities(store, {
      processChunk: async ({ chunk }) => {
        if (chunk.index !== 1) return { completed: chunk.lines, failed: 0 };
        // Ends the retries at once, as the policy's last attempt does (the dev server spaced retries about a
        // second apart even with a shorter delay: twenty attempts took twenty seconds).
        throw ApplicationFailure.nonRetryable('upstream unavailable');
      },
    });
    const batchId = newBatch(store);
    const { result, history } = await runToEnd(fake.activities, batchId);

    assert.equal(result, 'completed');
    assert.equal(store.statusOf(batchId), 'completed');
    assert.deepEqual(statuses(fake), ['validating', 'finalizing', 'completed']);
    assert.deepEqual(startedChunks(fake), [0, 1, 2]);
    assert.deepEqual(fake.calls.finalizeBatch[0].incomplete, [1]);
    assert.equal(fake.calls.finalizeBatch[0].missing?.code, 'internal_error');
    assert.equal(count(history, EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED), 1);
  });

  it('finalization that fails once is retried and the batch completes', async () => {
    const store = new FakeBatchStore(1);
    let failures = 0;
    const fake = fakeActivities(store, {
      finalizeBatch: async ({ chunks }) => {
        if (failures++ === 0) throw new Error('blob store unavailable');
        const completed = chunks.reduce((n, c) => n + c.lines, 0);
        return { completed, failed: 0, outputFileId: 'file-output', errorFileId: null };
      },
    });
    const batchId = newBatch(store);
    const { result, history } = await runToEnd(fake.activities, batchId);

    assert.equal(result, 'completed');
    assert.equal(store.statusOf(batchId), 'completed');
    assert.deepEqual(statuses(fake), ['validating', 'finalizing', 'completed']);
    assert.equal(fake.calls.finalizeBatch.length, 2);
    assert.deepEqual(fake.calls.finalizeBatch[1].incomplete, []);
    assert.equal(fake.calls.finalizeBatch[1].missing, null);
    assert.deepEqual(
      attempts(history, 'finalizeBatch'),
      [2],
      'one activity, completed on its second attempt',
    );
  });

  it('queued batches are admitted one at a time in the order they were created', async () => {
    const store = new FakeBatchStore(1);
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const first = newBatch(store);
    const fake = fakeActivities(store, {
      // Long enough a heartbeat timeout for the first batch's chunk to hold its slot while the others queue.
      validation: { ...goodPlan(1, 1), heartbeatTimeoutSeconds: 300 },
      processChunk: async ({ batchId, chunk }) => {
        if (batchId === first) await released;
        return { completed: chunk.lines, failed: 0 };
      },
    });
    const queued = [newBatch(store), newBatch(store), newBatch(store), newBatch(store)];
    const results = await withWorker(tb, fake.activities, async (q) => {
      const handles = [await start(q, first)];
      await until('the first batch to run', () => fake.calls.processChunk.length === 1);
      // Started newest first: only the rule, not the start order, can admit them oldest first.
      for (const batchId of [...queued].reverse()) handles.push(await start(q, batchId));
      await until('every later batch to wait for admission', () =>
        queued.every((id) => fake.calls.admitBatch.some((c) => c.batchId === id)),
      );
      release();
      return Promise.all(handles.map((h) => h.result()));
    });

    assert.deepEqual(results, Array(5).fill('completed'));
    assert.deepEqual(store.admissions, [first, ...queued]);
    assert.equal(store.peakRunning, 1);
    assert.deepEqual(
      fake.calls.processChunk.map((c) => c.batchId),
      [first, ...queued],
      'a batch runs chunks only once admitted',
    );
  });
});
