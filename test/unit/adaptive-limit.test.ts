import assert from 'node:assert/strict';
import { AdaptiveLimit } from '../../activities/adaptive-limit';

/**
 * A vLLM-like server: up to `capacity` requests in service at `serviceMs` each, the rest queue, so at
 * concurrency c the latency is serviceMs × max(1, c / capacity) and throughput c / latency saturates at capacity.
 */
function simulate(
  capacity: number,
  opts: { max: number; initial?: number; windows: number; overloadAbove?: number },
) {
  const limits: number[] = [];
  const ctl = new AdaptiveLimit({ initial: opts.initial ?? 4, max: opts.max, onChange: () => undefined });
  for (let w = 0; w < opts.windows; w++) {
    const c = ctl.limit;
    const latency = 100 * Math.max(1, c / capacity);
    const overloaded = opts.overloadAbove !== undefined && c > opts.overloadAbove;
    // A 500 ms window sees throughput × 0.5 s completions, with a little spread in their latency.
    const completions = Math.max(5, Math.round((500 / latency) * c));
    for (let i = 0; i < completions; i++) {
      ctl.record({ latencyMs: latency * (0.95 + (0.1 * ((i * 7) % 10)) / 10), overloaded });
    }
    ctl.tick(true);
    limits.push(ctl.limit);
  }
  return limits;
}

describe('AdaptiveLimit', () => {
  for (const capacity of [32, 64, 256]) {
    it(`finds and holds the best concurrency of a ${capacity}-slot upstream from a cold start`, () => {
      const limits = simulate(capacity, { max: 4096, windows: 200 });
      const settled = limits.slice(-50);
      for (const l of settled) {
        assert.ok(l >= capacity, `limit ${l} would leave some of ${capacity} slots idle`);
        assert.ok(l <= capacity * 2.5, `limit ${l} only queues beyond ${capacity} slots`);
      }
    });
  }

  it('never exceeds the MAX_WORKERS ceiling', () => {
    assert.ok(simulate(1000, { max: 64, windows: 100 }).every((l) => l <= 64));
    assert.equal(simulate(1000, { max: 64, windows: 100 }).at(-1), 64);
  });

  it('backs off multiplicatively on 429/503 and recovers below the overload point', () => {
    const limits = simulate(256, { max: 4096, windows: 200, overloadAbove: 40 });
    assert.ok(
      Math.max(...limits.slice(-50)) <= 60,
      'stays near the point where the upstream starts refusing',
    );
    assert.ok(Math.min(...limits.slice(-50)) >= 20, 'does not collapse either');
  });

  it('does not grow without demand, nor without enough samples', () => {
    const ctl = new AdaptiveLimit({ initial: 8, max: 100, onChange: () => undefined });
    for (let i = 0; i < 20; i++) ctl.record({ latencyMs: 100, overloaded: false });
    ctl.tick(false);
    assert.equal(ctl.limit, 8);
    ctl.record({ latencyMs: 100, overloaded: false });
    ctl.tick(true);
    assert.equal(ctl.limit, 8);
  });
});
