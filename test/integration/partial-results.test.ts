import assert from 'node:assert/strict';
import OpenAI from 'openai';
import type { BatchResultLine } from '../../src/shared/openai';
import { batchLines, createBatch, downloadLines, toJsonl, waitForBatch } from '../support/batches';
import { startStack, type Stack } from '../support/stack';

type Kind = 'output' | 'error';

/** One page of GET /v1/batches/{id}/partial_results, through the SDK's raw response. */
async function page(client: OpenAI, id: string, query: Record<string, string | number | undefined>) {
  const res = await client.get(`/batches/${id}/partial_results`, { query }).asResponse();
  const text = await res.text();
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    lines: text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as BatchResultLine),
    next: res.headers.get('x-next-after'),
    hasMore: res.headers.get('x-has-more'),
  };
}

/** A reader that follows the cursor, as `besh get --partial` does, remembering what each page gave. */
class Follower {
  private after: string | undefined;
  readonly lines: BatchResultLine[] = [];
  finished = false;

  constructor(
    private readonly client: OpenAI,
    private readonly id: string,
    private readonly kind: Kind,
    private readonly limit: number,
  ) {}

  async step(): Promise<number> {
    const p = await page(this.client, this.id, { kind: this.kind, after: this.after, limit: this.limit });
    assert.equal(p.status, 200);
    assert.equal(p.type, 'application/jsonl');
    assert.ok(p.next, 'every page names where the next starts');
    assert.ok(p.lines.length <= this.limit);
    this.after = p.next;
    this.lines.push(...p.lines);
    this.finished = p.hasMore === 'false';
    return p.lines.length;
  }
}

const ids = (lines: BatchResultLine[]) => lines.map((l) => l.custom_id);

function assertSameLinesOnce(got: BatchResultLine[], file: BatchResultLine[], what: string) {
  assert.equal(new Set(ids(got)).size, got.length, `${what}: no line twice`);
  assert.deepEqual(
    got.map((l) => JSON.stringify(l)).sort(),
    file.map((l) => JSON.stringify(l)).sort(),
    `${what}: the pages hold the result file, line for line`,
  );
}

describe('Partial results: the lines a batch has answered so far, each once, through the openai SDK', function () {
  this.timeout(120_000);
  let s: Stack;
  before(async () => {
    // A pool of 4 slots at 25 ms a request: 600 requests take a few seconds, long enough to read while they run.
    s = await startStack({
      simulator: { capacity: 4, baseLatencyMs: 25 },
      env: { MAX_WORKERS: '8', CHECKPOINT_FLUSH_MS: '100' },
    });
  });
  after(async () => s?.close());

  /** 600 requests; every tenth asks to stream, which the pool refuses with a 400: an error line. */
  const input = () =>
    batchLines(600).map((l, i) => (i % 10 === 3 ? { ...l, body: { ...l.body, stream: true } } : l));

  it('gives lines while the batch runs, and after it the rest: the pages hold both result files exactly', async () => {
    const lines = input();
    const batch = await createBatch(s.openai, toJsonl(lines));
    const out = new Follower(s.openai, batch.id, 'output', 37);
    const err = new Follower(s.openai, batch.id, 'error', 11);
    let whileRunning = 0;
    for (const deadline = Date.now() + 60_000; ;) {
      assert.ok(Date.now() < deadline, 'the batch finishes');
      const status = (await s.openai.batches.retrieve(batch.id)).status;
      const got = (await out.step()) + (await err.step());
      if (status === 'in_progress') whileRunning += got;
      if (status === 'completed') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(whileRunning > 0, 'lines arrive before the batch ends');
    for (let guard = 0; !(out.finished && err.finished); guard++) {
      assert.ok(guard < 100, 'the cursor reaches the end');
      await out.step();
      await err.step();
    }
    const done = await waitForBatch(s.openai, batch.id);
    assertSameLinesOnce(out.lines, await downloadLines(s.openai, done.output_file_id), 'output');
    assertSameLinesOnce(err.lines, await downloadLines(s.openai, done.error_file_id), 'error');
    assert.equal(err.lines.length, 60);
    assert.equal(out.lines.length + err.lines.length, lines.length);
    // A finished batch read from its start gives the file in its own order.
    const fresh = new Follower(s.openai, batch.id, 'output', 1000);
    await fresh.step();
    assert.equal(fresh.finished, true);
    assert.deepEqual(ids(fresh.lines), ids(await downloadLines(s.openai, done.output_file_id)));
  });

  it('a cancelled batch: lines read before the cancel are not given again, and the unrun requests follow as errors', async () => {
    s.sim.setFaults({ latencyFactor: 4 });
    try {
      const lines = input();
      const batch = await createBatch(s.openai, toJsonl(lines));
      const out = new Follower(s.openai, batch.id, 'output', 1000);
      const err = new Follower(s.openai, batch.id, 'error', 1000);
      for (const deadline = Date.now() + 30_000; out.lines.length === 0;) {
        assert.ok(Date.now() < deadline, 'some lines arrive');
        await out.step();
        await new Promise((r) => setTimeout(r, 50));
      }
      await err.step();
      await s.openai.batches.cancel(batch.id);
      const done = await waitForBatch(s.openai, batch.id);
      assert.equal(done.status, 'cancelled');
      while (!out.finished) await out.step();
      while (!err.finished) await err.step();
      const errFile = await downloadLines(s.openai, done.error_file_id);
      assertSameLinesOnce(out.lines, await downloadLines(s.openai, done.output_file_id), 'output');
      assertSameLinesOnce(err.lines, errFile, 'error');
      assert.ok(errFile.some((l) => l.error?.code === 'batch_cancelled'));
      assert.equal(out.lines.length + err.lines.length, lines.length);
    } finally {
      s.sim.setFaults({ latencyFactor: 1 });
    }
  });

  it('refuses a bad kind, limit or cursor in the OpenAI shape, and hides another tenant’s batch', async () => {
    const batch = await createBatch(s.openai, toJsonl(batchLines(3)));
    await waitForBatch(s.openai, batch.id);
    const refused = async (query: Record<string, string>, param: string, client = s.openai) => {
      const e = await client
        .get(`/batches/${batch.id}/partial_results`, { query })
        .then(() => null)
        .catch((err: unknown) => err);
      assert.ok(e instanceof OpenAI.BadRequestError, `${JSON.stringify(query)}: ${String(e)}`);
      assert.equal(e.param, param);
      return e;
    };
    await refused({ kind: 'both' }, 'kind');
    await refused({ limit: '0' }, 'limit');
    await refused({ limit: '10001' }, 'limit');
    assert.equal((await refused({ after: 'not a cursor' }, 'after')).code, 'invalid_cursor');
    const first = await page(s.openai, batch.id, { kind: 'output', limit: 1 });
    assert.equal(first.hasMore, 'true');
    await refused({ kind: 'error', after: first.next! }, 'after');
    const other = await s.openaiB
      .get(`/batches/${batch.id}/partial_results`)
      .then(() => null)
      .catch((err: unknown) => err);
    assert.ok(other instanceof OpenAI.NotFoundError, String(other));
    const unknown = await s.openai
      .get('/batches/batch_nope/partial_results')
      .then(() => null)
      .catch((err: unknown) => err);
    assert.ok(unknown instanceof OpenAI.NotFoundError, String(unknown));
  });
});
