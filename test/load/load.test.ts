import assert from 'node:assert/strict';
// Latencies are reported, not asserted: this 2-core machine is shared, and timing belongs in benchmarks.
import { assertEveryLineOnce, batchLines, createBatch, toJsonl } from '../support/batches';
import { startStack, type Stack } from '../support/stack';

const BATCHES = 10;
const REQUESTS = 5000;
const POLLERS = 50;

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

describe('Load: ten batches of 5,000 requests at once, with 50 clients polling', function () {
  this.timeout(600_000);
  let s: Stack;
  before(async () => {
    s = await startStack({
      env: { MAX_CONCURRENT_BATCHES: String(BATCHES), MAX_WORKERS: '128' },
      simulator: { capacity: 128, baseLatencyMs: 20 },
    });
  });
  after(async () => s?.close());

  it('completes them all, shares the pool fairly, and answers polls quickly', async () => {
    const inputs = Array.from({ length: BATCHES }, () => batchLines(REQUESTS));
    const ids: string[] = [];
    for (const input of inputs) ids.push((await createBatch(s.openai, toJsonl(input))).id);
    const started = Date.now();

    const latencies: number[] = [];
    const finished = new Map<string, number>();
    // Progress of every batch at the moment the first one completed: none may be starved.
    let atFirstFinish: number[] | null = null;
    const statusOf = new Map<string, { status: string; completed: number }>();
    let stop = false;
    const poll = async (n: number) => {
      while (!stop) {
        const t = performance.now();
        if (n % 10 === 0) {
          const page = await s.openai.batches.list({ limit: 20 });
          latencies.push(performance.now() - t);
          for (const b of page.data)
            statusOf.set(b.id, { status: b.status, completed: b.request_counts!.completed });
        } else {
          const id = ids[(n + latencies.length) % ids.length];
          const b = await s.openai.batches.retrieve(id);
          latencies.push(performance.now() - t);
          statusOf.set(id, { status: b.status, completed: b.request_counts!.completed });
        }
        for (const [id, st] of statusOf) {
          if (st.status === 'completed' && !finished.has(id)) {
            finished.set(id, Date.now() - started);
            atFirstFinish ??= ids.map((i) => statusOf.get(i)?.completed ?? 0);
          }
        }
        if (finished.size === BATCHES) stop = true;
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const deadline = setTimeout(() => (stop = true), 500_000);
    await Promise.all(Array.from({ length: POLLERS }, (_, n) => poll(n)));
    clearTimeout(deadline);
    assert.equal(finished.size, BATCHES, 'every batch completed');

    for (const [i, id] of ids.entries()) {
      const b = await s.openai.batches.retrieve(id);
      await assertEveryLineOnce(s.openai, b, inputs[i]);
    }
    latencies.sort((a, b) => a - b);
    const p50 = percentile(latencies, 50);
    const p99 = percentile(latencies, 99);
    const times = [...finished.values()].sort((a, b) => a - b);
    const least = Math.min(...atFirstFinish!);
    console.log(
      `      ${BATCHES}x${REQUESTS} requests in ${(times.at(-1)! / 1000).toFixed(1)} s ` +
        `(${Math.round((BATCHES * REQUESTS) / (times.at(-1)! / 1000))} req/s); batches finished between ` +
        `${(times[0] / 1000).toFixed(1)} s and ${(times.at(-1)! / 1000).toFixed(1)} s; when the first finished, ` +
        `the least advanced had ${least}/${REQUESTS}\n      polls: ${latencies.length}, p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`,
    );
    assert.ok(least >= REQUESTS * 0.5, `a batch starved: ${least}/${REQUESTS} done when the first finished`);
  });
});
