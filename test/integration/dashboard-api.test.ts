import assert from 'node:assert/strict';
import { setStatusActivity } from '../../activities/batch-status';
import { saveChunkProgress } from '../../activities/chunk-progress';
import type { ActivityDeps } from '../../activities/deps';
import { recordOnce } from '../../src/stats/record';
import { batchLines, createBatch, toJsonl, waitForBatch } from '../support/batches';
import { startStack, type Stack } from '../support/stack';

interface Summary {
  batches: Record<string, number>;
  requests: { succeeded: number; failed: number; error_rate: number | null };
  tokens: { input: number; output: number; total: number };
  mean_batch_duration_seconds: number | null;
  storage: { files: number; bytes: number };
}

describe('Dashboard JSON, stats buckets and metrics', function () {
  this.timeout(120_000);
  let s: Stack;
  let completedId: string;
  let failedId: string;
  const get = async <T>(path: string, key = s.keyA): Promise<T> => {
    const res = await fetch(`${s.baseURL}${path}`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as T;
  };

  before(async () => {
    s = await startStack({
      env: { COMPLETION_WINDOW_MIN_SECONDS: '1' },
      simulator: { capacity: 8, baseLatencyMs: 20 },
    });
    // One batch that completes (30 requests, 2 of them rejected by the upstream), one that fails validation.
    const input = batchLines(30);
    for (const i of [3, 7]) delete input[i].body.messages;
    const ok = await createBatch(s.openai, toJsonl(input));
    completedId = (await waitForBatch(s.openai, ok.id)).id;
    // Line 2 uses a method the batch API refuses, line 3 another endpoint.
    const [good, wrongMethod, wrongUrl] = batchLines(3);
    const bad = await createBatch(
      s.openai,
      toJsonl([good, { ...wrongMethod, method: 'GET' }, { ...wrongUrl, url: '/v1/embeddings' }]),
    );
    failedId = (await waitForBatch(s.openai, bad.id)).id;
  });
  after(async () => s?.close());

  it('charts throughput and uploads per 15 minutes over 24 h from the buckets', async () => {
    const t = await get<{ bucket_seconds: number; data: Array<Record<string, number | string | null>> }>(
      '/dashboard/throughput',
    );
    assert.equal(t.bucket_seconds, 900);
    assert.equal(t.data.length, 96);
    assert.match(String(t.data[0].start), /^\d{4}-\d\d-\d\dT\d\d:\d\d:00\.000Z$/);
    const sum = (k: string) => t.data.reduce((a, b) => a + Number(b[k] ?? 0), 0);
    assert.equal(sum('requests_succeeded'), 28);
    assert.equal(sum('requests_failed'), 2);
    assert.ok(sum('input_tokens') > 0 && sum('output_tokens') > 0);
    const u = await get<{ data: Array<{ uploads: number; bytes: number }> }>('/dashboard/uploads');
    assert.equal(
      u.data.reduce((a, b) => a + b.uploads, 0),
      2,
    );
  });

  it('covers a range of 1 h, 6 h, 24 h or 7 d, in 15-minute buckets ending now', async () => {
    for (const [range, buckets] of [
      ['1h', 4],
      ['6h', 24],
      ['24h', 96],
      ['7d', 672],
    ] as const) {
      const t = await get<{ range: string; data: Array<{ start: string; requests_succeeded: number }> }>(
        `/dashboard/throughput?range=${range}`,
      );
      assert.equal(t.range, range);
      assert.equal(t.data.length, buckets, range);
      const last = Date.parse(t.data[buckets - 1].start);
      assert.ok(last <= Date.now() && Date.now() - last < 900_000, range);
      // Every batch of this test ran in the last hour, so each range holds all of it.
      assert.equal(
        t.data.reduce((a, b) => a + b.requests_succeeded, 0),
        28,
        range,
      );
      const u = await get<{ range: string; data: unknown[] }>(`/dashboard/uploads?range=${range}`);
      assert.deepEqual([u.range, u.data.length], [range, buckets]);
      const sum = await get<Summary & { range: string }>(`/dashboard/summary?range=${range}`);
      assert.deepEqual([sum.range, sum.requests.succeeded, sum.batches.created], [range, 28, 2]);
    }
    assert.equal((await get<{ range: string }>('/dashboard/summary')).range, '24h');
    const bad = await fetch(`${s.baseURL}/dashboard/throughput?range=2h`, {
      headers: { authorization: `Bearer ${s.keyA}` },
    });
    assert.equal(bad.status, 400);
    const body = (await bad.json()) as { error: { param: string; code: string } };
    assert.deepEqual([body.error.param, body.error.code], ['range', 'invalid_value']);
  });

  it('summarises the last 24 h', async () => {
    const sum = await get<Summary>('/dashboard/summary');
    assert.deepEqual(sum.batches, {
      created: 2,
      completed: 1,
      failed: 1,
      cancelled: 0,
      expired: 0,
      running: 0,
    });
    assert.deepEqual(sum.requests, { succeeded: 28, failed: 2, error_rate: 2 / 30 });
    assert.equal(sum.tokens.total, sum.tokens.input + sum.tokens.output);
    assert.ok(sum.mean_batch_duration_seconds !== null && sum.mean_batch_duration_seconds >= 0);
    assert.ok(sum.storage.files >= 3);
    const other = await get<Summary>('/dashboard/summary', s.keyB);
    assert.equal(other.batches.created, 0, "another tenant's numbers are its own");
  });

  it('lists batches with progress, a status filter and a Temporal UI link', async () => {
    const list = await get<{ data: Array<Record<string, unknown>>; has_more: boolean }>(
      '/dashboard/batches?status=completed',
    );
    assert.deepEqual(
      list.data.map((b) => b.id),
      [completedId],
    );
    const view = await get<Record<string, unknown>>(`/dashboard/batches/${completedId}`);
    assert.equal(view.percent, 100);
    assert.equal(view.eta_seconds, null);
    assert.match(String(view.completed_at), /Z$/);
    assert.equal(view.temporal_url, `${s.config.temporalUiUrl}/namespaces/default/workflows/${completedId}`);
    const bad = await fetch(`${s.baseURL}/dashboard/batches?status=nonsense`, {
      headers: { authorization: `Bearer ${s.keyA}` },
    });
    assert.equal(bad.status, 400);
  });

  it("gives a failed batch's first errors with their line numbers", async () => {
    const view = await get<{ status: string; errors: Array<{ line: number | null }>; errors_total: number }>(
      `/dashboard/batches/${failedId}`,
    );
    assert.equal(view.status, 'failed');
    assert.deepEqual(
      view.errors.map((e) => e.line),
      [2, 3],
    );
    assert.equal(view.errors_total, 2);
    const ok = await get<{ errors: unknown[]; errors_total: number }>(`/dashboard/batches/${completedId}`);
    assert.deepEqual([ok.errors, ok.errors_total], [[], 0]);
  });

  it('never counts twice: retried progress writes, final statuses and events', async () => {
    const before = await get<Summary>('/dashboard/summary');
    const deps = { db: s.db } as ActivityDeps;
    // A retried final-status activity on a batch that already finished.
    await setStatusActivity(deps)({ batchId: completedId, status: 'completed' });
    // A chunk reporting the same totals again (as a retried attempt would), then a smaller total (a stale one).
    const owner = (await s.keys.authenticate(s.keyA))!.tenantId;
    const totals = {
      completed: 5,
      failed: 1,
      inputTokens: 50,
      cachedTokens: 0,
      outputTokens: 80,
      reasoningTokens: 0,
      latencyMsSum: 100,
      latencyCount: 6,
    };
    await saveChunkProgress(s.db, owner, 'batch_synthetic', 0, totals);
    await saveChunkProgress(s.db, owner, 'batch_synthetic', 0, totals);
    await saveChunkProgress(s.db, owner, 'batch_synthetic', 0, { ...totals, completed: 2 });
    await recordOnce(s.db, 'upload:file-synthetic', owner, Math.floor(Date.now() / 1000), { uploads: 1 });
    await recordOnce(s.db, 'upload:file-synthetic', owner, Math.floor(Date.now() / 1000), { uploads: 1 });
    const after = await get<Summary>('/dashboard/summary');
    assert.equal(after.batches.completed, before.batches.completed, 'the final status counted once');
    assert.equal(after.requests.succeeded, before.requests.succeeded + 5, 'the chunk counted once');
    assert.equal(after.requests.failed, before.requests.failed + 1);
    const uploads = await get<{ data: Array<{ uploads: number }> }>('/dashboard/uploads');
    assert.equal(
      uploads.data.reduce((a, b) => a + b.uploads, 0),
      3,
      'the upload event counted once',
    );
  });

  it('serves Prometheus metrics to an operator key', async () => {
    const anon = await fetch(`${s.baseURL.replace(/\/v1$/, '')}/metrics`);
    assert.equal(anon.status, 401);
    const { key } = await s.keys.create({ role: 'operator' });
    const res = await fetch(`${s.baseURL.replace(/\/v1$/, '')}/metrics`, {
      headers: { authorization: `Bearer ${key}` },
    });
    assert.equal(res.status, 200);
    const text = await res.text();
    const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
    assert.ok(
      value(/besh_upstream_requests_total\{outcome="success",status_code="200",pool="default"\} (\d+)/) >= 28,
    );
    assert.ok(
      value(/besh_upstream_requests_total\{outcome="http_error",status_code="400",pool="default"\} (\d+)/) >=
        2,
    );
    assert.match(
      text,
      /besh_upstream_request_duration_seconds_bucket\{le="0.05",outcome="success",pool="default"\} \d+/,
    );
    assert.match(text, /besh_batches\{status="in_progress"\} 0/);
    assert.match(text, /besh_batches_finished_total\{status="completed"\} \d+/);
    assert.match(text, /besh_batch_queue_wait_seconds_count \d+/);
    assert.match(text, /besh_process_resident_memory_bytes \d+/);
  });
});
