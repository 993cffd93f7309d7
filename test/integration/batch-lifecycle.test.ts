import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { batchLines, createBatch, assertEveryLineOnce, toJsonl, waitForBatch } from '../support/batches';
import { until } from '../support/processes';
import { startStack, type Stack } from '../support/stack';

describe('Batch lifecycle: validation, live progress, cancel, expiry', function () {
  this.timeout(120_000);
  let s: Stack;
  before(async () => {
    // A slow upstream (4 slots, 40 ms a request) so that a batch is observably in progress.
    s = await startStack({
      env: { COMPLETION_WINDOW_MIN_SECONDS: '1', MAX_BATCH_REQUESTS: '500', MAX_WORKERS: '8' },
      simulator: { capacity: 4, baseLatencyMs: 40 },
    });
  });
  after(async () => s?.close());

  it('fails validation with OpenAI codes and the line of each problem', async () => {
    const good = (i: number, extra: Record<string, unknown> = {}) => ({
      custom_id: `c${i}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: 'sim-model', messages: [] },
      ...extra,
    });
    const lines = [
      good(1),
      good(2, { custom_id: undefined }),
      good(1),
      good(4, { method: 'GET' }),
      good(5, { url: '/v1/embeddings' }),
      good(6, { body: undefined }),
      good(7, { body: { messages: [] } }),
      good(8, { body: { model: 'other-model', messages: [] } }),
    ];
    const created = await createBatch(s.openai, toJsonl(lines));
    const failed = await waitForBatch(s.openai, created.id);
    assert.equal(failed.status, 'failed');
    assert.ok(failed.failed_at);
    assert.equal(failed.output_file_id, null);
    const errors = failed.errors!.data!.map((e) => [e.code, e.line]);
    assert.deepEqual(errors, [
      ['missing_custom_id', 2],
      ['duplicate_custom_id', 3],
      ['invalid_method', 4],
      ['url_mismatch', 5],
      ['missing_body', 6],
      ['missing_model', 7],
      ['model_mismatch', 8],
    ]);
    assert.equal(s.sim.stats().received, 0, 'nothing was sent upstream');
  });

  it('fails a batch over the request limit with too_many_tasks', async () => {
    const created = await createBatch(s.openai, toJsonl(batchLines(501)));
    const failed = await waitForBatch(s.openai, created.id);
    assert.equal(failed.status, 'failed');
    assert.deepEqual(
      failed.errors!.data!.map((e) => [e.code, e.line]),
      [['too_many_tasks', 501]],
    );
  });

  it('reports live request counts and usage while the batch runs', async () => {
    const input = batchLines(300);
    const created = await createBatch(s.openai, toJsonl(input));
    const running = await waitForBatch(s.openai, created.id, {
      until: (b) => b.status === 'in_progress' && b.request_counts!.completed >= 20,
    });
    assert.equal(running.request_counts!.total, 300);
    assert.ok(running.request_counts!.completed < 300, 'observed mid-run');
    assert.ok(running.usage!.input_tokens > 0, 'usage is live too');
    const listed = (await s.openai.batches.list()).data.find((b) => b.id === created.id)!;
    assert.ok(listed.request_counts!.completed >= 20, 'the list shows live counts as well');
    const done = await waitForBatch(s.openai, created.id);
    assert.equal(done.status, 'completed');
    await assertEveryLineOnce(s.openai, done, input);
  });

  it('cancels mid-run: stops upstream traffic and keeps partial results @store', async () => {
    // The stack's simulator counts the earlier tests' requests too.
    const sentBefore = s.sim.stats().received;
    const input = batchLines(400);
    const created = await createBatch(s.openai, toJsonl(input));
    await waitForBatch(s.openai, created.id, { until: (b) => b.request_counts!.completed >= 20 });
    const cancelling = await s.openai.batches.cancel(created.id);
    assert.equal(cancelling.status, 'cancelling');
    assert.ok(cancelling.cancelling_at);
    const again = await s.openai.batches.cancel(created.id);
    assert.ok(['cancelling', 'cancelled'].includes(again.status), 'cancel is idempotent');
    const done = await waitForBatch(s.openai, created.id);
    assert.equal(done.status, 'cancelled');
    assert.ok(done.cancelled_at);
    // The workflow waits for its chunk activities to finish cancelling (WAIT_CANCELLATION_COMPLETED) before the
    // batch reads cancelled, so nothing can send any more; the simulator only has to see the aborted requests go.
    await until(
      'the simulator to see the last request answered or aborted',
      () => s.sim.stats().inService === 0 && s.sim.stats().queued === 0,
      10_000,
    );
    const received = s.sim.stats().received;
    assert.ok(received - sentBefore < 400, `upstream saw ${received - sentBefore} of 400`);
    const { out, err } = await assertEveryLineOnce(s.openai, done, input);
    assert.ok(out.length >= 20);
    assert.ok(err.length > 0 && err.every((l) => l.error?.code === 'batch_cancelled' && l.response === null));

    const finished = await s.openai.batches.cancel(created.id).catch((e: unknown) => e);
    assert.ok(
      finished instanceof OpenAI.BadRequestError,
      'a finished batch cannot be cancelled (400, not 409)',
    );
    assert.equal(s.sim.stats().received, received, 'no request is sent after the batch is cancelled');
  });

  it('a cancel aborts the requests in flight on the worker before any of them is answered', async () => {
    // Every request takes 3 s and all start together, so none can be answered unless the cancel is slower than
    // that: Temporal alone delivers it with a heartbeat, up to most of HEARTBEAT_TIMEOUT_SECONDS (5 s) later.
    const t = await startStack({
      env: { MAX_WORKERS: '16', CONCURRENCY_MODE: 'fixed' },
      simulator: { capacity: 64, baseLatencyMs: 3000, perTokenMs: 0 },
    });
    try {
      const input = batchLines(100);
      const created = await createBatch(t.openai, toJsonl(input));
      await until('16 requests in flight', () => t.sim.stats().inService === 16);
      assert.equal((await t.openai.batches.cancel(created.id)).status, 'cancelling');
      await until('the upstream to hold no request', () => {
        const st = t.sim.stats();
        return st.inService === 0 && st.queued === 0;
      });
      const st = t.sim.stats();
      assert.equal(st.completed, 0, 'no request was answered after the cancel');
      assert.equal(st.aborted, 16, 'every request in flight was aborted');
      assert.equal(st.received, 16, 'no request started after the cancel');
      const done = await waitForBatch(t.openai, created.id);
      assert.equal(done.status, 'cancelled');
      const { err } = await assertEveryLineOnce(t.openai, done, input);
      assert.ok(err.every((l) => l.error?.code === 'batch_cancelled'));
    } finally {
      await t.close();
    }
  });

  it('expires at the end of its completion window, keeping what completed @store', async () => {
    const input = batchLines(400);
    const created = await createBatch(s.openai, toJsonl(input), { window: '2s' });
    assert.equal(created.expires_at, created.created_at + 2);
    const done = await waitForBatch(s.openai, created.id);
    assert.equal(done.status, 'expired');
    assert.ok(done.expired_at);
    const { out, err } = await assertEveryLineOnce(s.openai, done, input);
    assert.ok(out.length > 0, 'completed requests are kept');
    assert.ok(err.length > 0 && err.every((l) => l.error?.code === 'batch_expired'));
  });

  it('deletes a batch (cancelling it first when running) with its result files, keeping the input', async () => {
    const input = batchLines(300);
    const created = await createBatch(s.openai, toJsonl(input));
    await waitForBatch(s.openai, created.id, { until: (b) => b.request_counts!.completed >= 10 });
    const del = (key: string) =>
      fetch(`${s.baseURL}/batches/${created.id}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${key}` },
      });
    assert.equal((await del(s.keyB)).status, 404, "another tenant's delete finds nothing");
    assert.equal((await s.openai.batches.retrieve(created.id)).id, created.id);
    const res = await del(s.keyA);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { id: created.id, object: 'batch', deleted: true });
    const gone = await s.openai.batches.retrieve(created.id).catch((e: unknown) => e);
    assert.ok(gone instanceof OpenAI.NotFoundError);
    const files = (await s.openai.files.list()).data;
    assert.ok(
      files.some((f) => f.id === created.input_file_id),
      'the input file stays',
    );
    assert.ok(
      !files.some((f) => f.purpose === 'batch_output' && f.filename.startsWith(created.id)),
      'results are gone',
    );
  });

  it('waits for a MAX_CONCURRENT_BATCHES slot in creation order', async () => {
    const t = await startStack({
      env: { MAX_CONCURRENT_BATCHES: '1' },
      simulator: { capacity: 4, baseLatencyMs: 20 },
    });
    try {
      const a = await createBatch(t.openai, toJsonl(batchLines(100)));
      const b = await createBatch(t.openai, toJsonl(batchLines(10)));
      await until('a to start', async () => (await t.openai.batches.retrieve(a.id)).status === 'in_progress');
      const bWhileA = await t.openai.batches.retrieve(b.id);
      assert.equal(bWhileA.status, 'validating', 'b waits while a holds the only slot');
      const doneB = await waitForBatch(t.openai, b.id);
      const doneA = await t.openai.batches.retrieve(a.id);
      assert.equal(doneA.status, 'completed');
      assert.ok(doneB.in_progress_at! >= doneA.completed_at!, 'b started only after a finished');
    } finally {
      await t.close();
    }
  });
});
