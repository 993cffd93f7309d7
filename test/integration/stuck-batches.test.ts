// No batch can get stuck, and no Temporal that stops answering can hold the API: a batch whose run was ended
// at the engine is failed with the reason (on read, and by the cleanup schedule's sweep), after which cancel,
// delete and its input file behave as for any finished batch; with the Temporal server frozen, creating a
// batch answers a 503 within the call deadline and leaves nothing behind, even once the server answers again.
import { temporal } from '@temporalio/proto';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import OpenAI from 'openai';
import { BatchEntity } from '../../src/db/entities';
import { startDevServer, type DevServer } from '../../temporal/dev-server';
import { cleanupWorkflow } from '../../workflows';
import { batchLines, createBatch, toJsonl, uploadBatchFile, waitForBatch } from '../support/batches';
import { testOutputDir } from '../support/global';
import { freePort } from '../support/ports';
import { until } from '../support/processes';
import { startStack, type Stack } from '../support/stack';

const TERMINATED = 'The batch stopped before it finished: its run was terminated.';

/** Rejects with OpenAI's error shape, this status and this code. */
const apiError = (status: number, code: string) => (err: unknown) => {
  assert.ok(err instanceof OpenAI.APIError, `expected an API error, got ${String(err)}`);
  assert.deepEqual([err.status, err.code], [status, code], err.message);
  return true;
};

describe('A batch whose run ended at the engine', function () {
  this.timeout(120_000);
  let s: Stack;
  before(async () => {
    // A slow upstream, so that a batch is observably in progress when its run is ended.
    s = await startStack({ env: { MAX_WORKERS: '4' }, simulator: { capacity: 2, baseLatencyMs: 50 } });
  });
  after(async () => s?.close());

  const dashboard = async <T>(what: string): Promise<T> => {
    const res = await fetch(`${s.baseURL}/dashboard/${what}`, {
      headers: { authorization: `Bearer ${s.keyA}` },
    });
    assert.equal(res.status, 200);
    return (await res.json()) as T;
  };
  const running = async () => (await dashboard<{ batches: { running: number } }>('summary')).batches.running;

  /** A batch in progress whose workflow is then terminated, as an operator (or Temporal itself) may do. */
  async function terminatedMidRun() {
    const created = await createBatch(s.openai, toJsonl(batchLines(400)));
    await waitForBatch(s.openai, created.id, { until: (b) => b.status === 'in_progress' });
    assert.equal(await running(), 1);
    await s.temporal.workflow.getHandle(created.id).terminate('terminated by the test');
    return created;
  }

  it('reads as failed with the reason; cancel refuses it, its input file and the batch can be deleted', async () => {
    const batch = await terminatedMidRun();

    // A read asks Temporal at most once per 10 s for a batch that clients poll; the poll above just did.
    const got = await waitForBatch(s.openai, batch.id, { timeoutMs: 30_000 });
    assert.equal(got.status, 'failed');
    assert.ok(got.failed_at);
    assert.deepEqual(
      got.errors?.data?.map((e) => [e.code, e.message]),
      [['batch_failed', TERMINATED]],
    );
    assert.equal(await running(), 0, 'the dashboard no longer counts it');

    await assert.rejects(s.openai.batches.cancel(batch.id), apiError(400, 'batch_not_cancellable'));
    assert.equal((await s.openai.files.delete(batch.input_file_id)).deleted, true);
    const res = await fetch(`${s.baseURL}/batches/${batch.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${s.keyA}` },
    });
    assert.equal(res.status, 200, await res.text());
    await assert.rejects(s.openai.batches.retrieve(batch.id), apiError(404, 'not_found'));
  });

  it('is failed by the cleanup schedule’s sweep when nobody reads it', async () => {
    const batch = await terminatedMidRun();

    await s.temporal.workflow.execute(cleanupWorkflow, {
      taskQueue: s.config.taskQueue,
      workflowId: `cleanup-${randomUUID()}`,
    });
    // Read through the dashboard's list, which never asks Temporal: the sweep alone moved it.
    const { data } = await dashboard<{ data: Array<{ id: string; status: string }> }>('batches');
    assert.equal(data.find((b) => b.id === batch.id)?.status, 'failed');
    assert.equal(await running(), 0);
    const row = await s.db.getRepository(BatchEntity).findOneByOrFail({ id: batch.id });
    assert.deepEqual(
      row.errors?.map((e) => e.message),
      [TERMINATED],
    );
  });
});

describe('Temporal frozen while the API calls it', function () {
  this.timeout(180_000);
  let server: DevServer;
  let s: Stack;
  let frozen = false;
  const freeze = (stop: boolean) => {
    process.kill(server.process.pid!, stop ? 'SIGSTOP' : 'SIGCONT');
    frozen = stop;
  };

  before(async () => {
    // A Temporal server of this test's own, to freeze without stopping the other tests' server.
    server = await startDevServer({
      port: await freePort(),
      uiPort: null,
      dbFile: null,
      logFile: path.join(testOutputDir, 'temporal-frozen.log'),
    });
    s = await startStack({
      env: { TEMPORAL_ADDRESS: server.address, TEMPORAL_CALL_TIMEOUT_SECONDS: '2', MAX_WORKERS: '2' },
      simulator: { capacity: 2, baseLatencyMs: 50 },
    });
  });
  after(async () => {
    if (frozen) freeze(false);
    await s?.close();
    await server?.stop();
  });

  it('answers 503 within the deadline and no batch appears later behind the client’s back', async () => {
    // A long batch in progress, to cancel and read while the server is frozen.
    const long = await createBatch(s.openai, toJsonl(batchLines(2000)));
    await waitForBatch(s.openai, long.id, { until: (b) => b.status === 'in_progress' });
    const input = await uploadBatchFile(s.openai, toJsonl(batchLines(5)));
    // No retries, and a timeout well past the 2 s deadline: a hanging call fails this test.
    const client = new OpenAI({ apiKey: s.keyA, baseURL: s.baseURL, maxRetries: 0, timeout: 20_000 });

    freeze(true);
    try {
      await assert.rejects(
        client.batches.create({
          input_file_id: input.id,
          endpoint: '/v1/chat/completions',
          completion_window: '24h',
        }),
        apiError(503, 'service_unavailable'),
      );
      assert.deepEqual(
        (await s.db.getRepository(BatchEntity).find()).map((b) => b.id),
        [long.id],
        'the refused batch left no row',
      );
      await assert.rejects(client.batches.cancel(long.id), apiError(503, 'service_unavailable'));
      assert.equal((await client.batches.retrieve(long.id)).status, 'in_progress', 'reads still answer');
    } finally {
      freeze(false);
    }

    // Once the server answers again, the long batch is cancelled and ends: by then the server has handled
    // everything it received while frozen, the abandoned start included.
    assert.equal((await s.openai.batches.cancel(long.id)).status, 'cancelling');
    assert.equal((await waitForBatch(s.openai, long.id)).status, 'cancelled');
    assert.deepEqual(
      (await s.openai.batches.list()).data.map((b) => b.id),
      [long.id],
      'no batch appeared',
    );
    // The abandoned start may have reached the server after all: then its run did nothing.
    const others: string[] = [];
    for await (const run of s.temporal.workflow.list({ query: `WorkflowType = 'batchWorkflow'` })) {
      if (run.workflowId !== long.id) others.push(run.workflowId);
    }
    for (const id of others) {
      const handle = s.temporal.workflow.getHandle(id);
      await until(
        `the abandoned run ${id} to close`,
        async () => (await handle.describe()).status.name !== 'RUNNING',
      );
      const scheduled = ((await handle.fetchHistory()).events ?? [])
        .filter((e) => e.eventType === temporal.api.enums.v1.EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
        .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name);
      assert.ok(
        scheduled.every((name) => name === 'validateInput'),
        `the abandoned run did nothing but find its batch gone: ${scheduled.join(', ')}`,
      );
    }
    assert.equal(await s.db.getRepository(BatchEntity).count(), 1);
  });
});
