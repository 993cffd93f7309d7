// Every way out of the batch workflow's normal path still ends the batch: an activity that fails for good (a
// non-retryable error, a result over Temporal's size limit) records `failed` with a reason and ends the run,
// keeping the results gathered so far; a run whose batch no longer exists ends without doing anything.
import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Activities } from '../../activities';
import { BATCH_GONE, type ValidationResult } from '../../src/contract/batch-workflow';
import { fakeActivities, goodPlan, type FakeActivities } from './fake-activities';
import { FakeBatchStore } from './fake-batch-store';
import { startBatch, startTestbed, withWorker, type Testbed } from './testbed';

/** What the batch's owner reads in `errors` when its run broke. */
const BROKEN = {
  code: 'batch_failed',
  message: 'The batch stopped because of an internal error.',
  param: null,
  line: null,
};

const broken = (what: string) => ApplicationFailure.nonRetryable(`${what} failed for good`, 'Broken');

describe('batch workflow: ways out of the normal path (fake activities)', function () {
  this.timeout(60_000);
  let tb: Testbed;

  before(async function () {
    this.timeout(120_000);
    tb = await startTestbed();
  });
  after(async () => tb?.env.teardown());

  /** Creates the batch in the store, runs its workflow to the end; the run's result or why it failed. */
  async function run(store: FakeBatchStore, activities: Activities) {
    const batchId = `batch_${randomUUID()}`;
    store.create(batchId);
    const outcome = await withWorker(tb, activities, async (taskQueue) => {
      const handle = await startBatch(tb, taskQueue, batchId);
      return handle.result().then(
        (result) => ({ result, failure: null }),
        (err: unknown) => ({ result: null, failure: err }),
      );
    });
    return { batchId, ...outcome };
  }

  /** The fakes, with validateInput replaced by `validate` (recorded in the timeline like the others). */
  function validatingWith(fake: FakeActivities, validate: () => Promise<ValidationResult>): Activities {
    return {
      ...fake.activities,
      validateInput: async () => {
        fake.timeline.push('validateInput');
        return validate();
      },
    };
  }

  const statuses = (fake: FakeActivities) => fake.calls.setStatus.map((c) => c.status);

  it('validation that fails for good records failed with a reason and ends the run', async () => {
    const store = new FakeBatchStore(1);
    const fake = fakeActivities(store);
    const { batchId, result, failure } = await run(
      store,
      validatingWith(fake, async () => {
        throw broken('validation');
      }),
    );

    assert.equal(failure, null, 'the run itself completes');
    assert.equal(result, 'failed');
    assert.equal(store.statusOf(batchId), 'failed');
    assert.deepEqual(fake.calls.setStatus, [{ batchId, status: 'failed', errors: [BROKEN] }]);
    // No plan, so no result files to join; the scratch state is cleaned as after any end.
    assert.deepEqual(fake.timeline, ['validateInput', 'setStatus failed', 'cleanupBatch']);
  });

  it('a validation result over Temporal’s payload limit fails the batch instead of retrying forever', async () => {
    const store = new FakeBatchStore(1);
    const fake = fakeActivities(store, {
      validation: { ...goodPlan(1, 1), model: 'm'.repeat(3 * 1024 * 1024) },
    });
    const { batchId, result } = await run(store, fake.activities);

    assert.equal(result, 'failed');
    assert.equal(store.statusOf(batchId), 'failed');
    assert.deepEqual(fake.calls.setStatus, [{ batchId, status: 'failed', errors: [BROKEN] }]);
    assert.equal(fake.calls.processChunk.length, 0);
  });

  it('finalization that fails for good records failed after the chunks ran, without finalizing twice', async () => {
    const store = new FakeBatchStore(1);
    const fake = fakeActivities(store, {
      finalizeBatch: async () => {
        throw broken('finalization');
      },
    });
    const { batchId, result } = await run(store, fake.activities);

    assert.equal(result, 'failed');
    assert.equal(store.statusOf(batchId), 'failed');
    assert.deepEqual(statuses(fake), ['validating', 'finalizing', 'failed']);
    assert.deepEqual(fake.calls.setStatus.at(-1)?.errors, [BROKEN]);
    assert.equal(fake.calls.processChunk.length, 3);
    assert.equal(fake.calls.finalizeBatch.length, 1);
    assert.equal(fake.calls.cleanupBatch.length, 1);
  });

  it('a failure after validation still joins the results: every line is reported as not executed', async () => {
    const store = new FakeBatchStore(1);
    const fake = fakeActivities(store, {
      setStatus: async ({ batchId, status, total }) => {
        if (status === 'validating') throw broken('recording the plan');
        return store.move(batchId, status, { total });
      },
    });
    const { batchId, result } = await run(store, fake.activities);

    assert.equal(result, 'failed');
    assert.equal(store.statusOf(batchId), 'failed');
    assert.equal(fake.calls.processChunk.length, 0);
    assert.equal(fake.calls.finalizeBatch.length, 1);
    const [finalize] = fake.calls.finalizeBatch;
    assert.deepEqual(finalize.incomplete, [0, 1, 2]);
    assert.deepEqual(finalize.missing, {
      code: 'batch_failed',
      message: 'This request was not executed because the batch failed.',
    });
    assert.deepEqual(statuses(fake), ['validating', 'failed']);
  });

  it('when even the failed status cannot be recorded, the run fails (and the API reconciles the batch)', async () => {
    const store = new FakeBatchStore(1);
    const fake = fakeActivities(store, {
      setStatus: async () => {
        throw broken('the database');
      },
    });
    const { batchId, failure } = await run(store, fake.activities);

    assert.ok(failure instanceof WorkflowFailedError, `the run failed: ${String(failure)}`);
    assert.equal(store.statusOf(batchId), 'validating', 'left for the API to reconcile');
    assert.deepEqual(statuses(fake), ['validating', 'failed']);
  });

  it('a run whose batch no longer exists ends at once, doing nothing, and shows as failed', async () => {
    const store = new FakeBatchStore(1);
    const fake = fakeActivities(store);
    const { failure } = await run(
      store,
      validatingWith(fake, async () => {
        throw ApplicationFailure.nonRetryable('Batch x does not exist: nothing to run.', BATCH_GONE);
      }),
    );

    assert.ok(failure instanceof WorkflowFailedError, `the run failed: ${String(failure)}`);
    assert.ok(failure.cause instanceof ActivityFailure);
    assert.equal((failure.cause.cause as ApplicationFailure).type, BATCH_GONE);
    assert.deepEqual(fake.timeline, ['validateInput']);
  });
});
