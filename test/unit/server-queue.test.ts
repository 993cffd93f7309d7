import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ServerQueue } from '../../activities/adaptive-limit';
import { ServerQueueWatch, sumGauge } from '../../activities/server-queue';
import { startSimulator, type Simulator } from '../../src/simulator/server';

async function until<T>(read: () => T | undefined, what: string, timeoutMs = 3000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = read();
    if (v !== undefined) return v;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe("ServerQueueWatch: the vLLM servers' own queue", () => {
  it('sums a gauge over label sets and ignores other metrics that share its prefix', () => {
    const text = [
      '# HELP vllm:num_requests_waiting Number of requests waiting.',
      'vllm:num_requests_waiting{engine="0",model_name="a"} 3.0',
      'vllm:num_requests_waiting{engine="1",model_name="a"} 4',
      'vllm:num_requests_waiting_total 100',
      'vllm:num_requests_running 7',
    ].join('\n');
    assert.equal(sumGauge(text, 'vllm:num_requests_waiting'), 7);
    assert.equal(sumGauge(text, 'vllm:num_requests_running'), 7);
    assert.equal(sumGauge(text, 'vllm:kv_cache_usage_perc'), null);
  });

  let sims: Simulator[] = [];
  afterEach(async () => {
    await Promise.all(sims.map((s) => s.close()));
    sims = [];
  });

  it('reports the sum over every server, and null while one of them cannot be read', async () => {
    sims = [
      await startSimulator({ capacity: 1, baseLatencyMs: 60_000 }),
      await startSimulator({ capacity: 2, baseLatencyMs: 60_000 }),
    ];
    const metrics = sims.map((s) => s.url.replace(/\/v1$/, '/metrics'));
    let last: ServerQueue | null | undefined;
    const watch = new ServerQueueWatch(metrics, (q) => (last = q), { everyMs: 20, timeoutMs: 500 });
    watch.start();
    try {
      const aborts = new AbortController();
      const send = (s: Simulator) =>
        fetch(`${s.url}/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }] }),
          signal: aborts.signal,
        }).catch(() => undefined);
      const pending = [
        ...Array.from({ length: 3 }, () => send(sims[0])),
        ...Array.from({ length: 3 }, () => send(sims[1])),
      ];
      // Server 0: 1 running, 2 waiting; server 1: 2 running, 1 waiting.
      await until(
        () => (last && last.running === 3 && last.waiting === 3 ? last : undefined),
        'the sum 3 + 3',
      );
      sims[1].setFaults({ down: true });
      await until(() => (last === null ? true : undefined), 'null while a server answers 503');
      sims[1].setFaults({ down: false });
      await until(() => (last ? true : undefined), 'readings again');
      aborts.abort();
      await Promise.all(pending);
    } finally {
      watch.close();
    }
  });
});
