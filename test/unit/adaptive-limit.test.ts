import assert from 'node:assert/strict';
import { AdaptiveLimit } from '../../activities/adaptive-limit';
import { mulberry32 } from '../../src/shared/prng';

/** A binary min-heap of [time, payload], enough for an event-driven simulation. */
class Events<T> {
  private readonly items: { at: number; v: T }[] = [];
  get size(): number {
    return this.items.length;
  }
  peek(): number {
    return this.items.length ? this.items[0].at : Infinity;
  }
  push(at: number, v: T): void {
    const a = this.items;
    a.push({ at, v });
    for (let i = a.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (a[p].at <= a[i].at) break;
      [a[p], a[i]] = [a[i], a[p]];
      i = p;
    }
  }
  pop(): { at: number; v: T } {
    const a = this.items;
    const top = a[0];
    const last = a.pop()!;
    if (a.length) {
      a[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l].at < a[m].at) m = l;
        if (r < a.length && a[r].at < a[m].at) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i], a[m]];
        i = m;
      }
    }
    return top;
  }
  values(): T[] {
    return this.items.map((x) => x.v);
  }
}

/** What the client sends next: its class and the service time it needs (before any queueing). */
type Mix = (t: number) => { key: string; serviceMs: number };

interface PoolRun {
  /** Answers (not refusals) completed in [from, to). */
  answered(from: number, to: number): number;
  /** The limit at each tick. */
  limits: { t: number; limit: number }[];
  /** Largest number of requests that waited in the server's queue at a tick, in [from, to). */
  maxWaiting(from: number, to: number): number;
}

/**
 * A vLLM-like pool, simulated event by event: `capacity` requests in service at once, the rest wait in FIFO
 * order; optionally it refuses (429, at once) whatever arrives while more than `refuseAbove` are inside. The
 * client keeps `limit` requests in flight while `demand(t)` holds, ticks the controller every 250 ms and,
 * with `servers`, tells it the pool's running and waiting counts as vLLM's /metrics would.
 */
function runPool(
  ctl: { limit: number } & Partial<Pick<AdaptiveLimit, 'started' | 'record' | 'tick' | 'observeServers'>>,
  opts: {
    capacity: number;
    mix: Mix;
    from: number;
    to: number;
    demand?: (t: number) => boolean;
    refuseAbove?: number;
    servers?: boolean;
  },
  clock: { t: number },
): PoolRun {
  const slots = new Events<null>();
  for (let i = 0; i < opts.capacity; i++) slots.push(opts.from, null);
  const inFlight = new Events<{ startedAt: number; serviceStart: number; key: string; refused: boolean }>();
  const done: { at: number; refused: boolean }[] = [];
  const limits: PoolRun['limits'] = [];
  const waiting: { t: number; n: number }[] = [];
  const demand = opts.demand ?? (() => true);
  let nextTick = opts.from + 250;
  clock.t = opts.from;
  const fill = () => {
    while (inFlight.size < ctl.limit && demand(clock.t)) {
      const { key, serviceMs } = opts.mix(clock.t);
      ctl.started?.();
      if (opts.refuseAbove !== undefined && inFlight.size >= opts.refuseAbove) {
        inFlight.push(clock.t + 1, { startedAt: clock.t, serviceStart: clock.t, key, refused: true });
        continue;
      }
      const serviceStart = Math.max(clock.t, slots.pop().at);
      slots.push(serviceStart + serviceMs, null);
      inFlight.push(serviceStart + serviceMs, { startedAt: clock.t, serviceStart, key, refused: false });
    }
  };
  fill();
  while (clock.t < opts.to) {
    // A tick comes before the answers of the same instant: requests it lets start measure the new limit.
    if (inFlight.peek() < nextTick) {
      const { at, v } = inFlight.pop();
      clock.t = at;
      done.push({ at, refused: v.refused });
      ctl.record?.({ latencyMs: at - v.startedAt, overloaded: v.refused, key: v.key });
    } else {
      clock.t = nextTick;
      nextTick += 250;
      const queued = inFlight.values().filter((r) => !r.refused && r.serviceStart > clock.t).length;
      waiting.push({ t: clock.t, n: queued });
      if (opts.servers) ctl.observeServers?.({ running: inFlight.size - queued, waiting: queued });
      ctl.tick?.(demand(clock.t) && inFlight.size >= ctl.limit);
      limits.push({ t: clock.t, limit: ctl.limit });
    }
    fill();
  }
  return {
    answered: (from, to) => done.filter((d) => !d.refused && d.at >= from && d.at < to).length,
    maxWaiting: (from, to) => Math.max(0, ...waiting.filter((w) => w.t >= from && w.t < to).map((w) => w.n)),
    limits,
  };
}

/** Service times spread ±50 % around a mean, as max_tokens spreads them in a real batch. */
function spread(seed: number) {
  const rand = mulberry32(seed);
  return (key: string, meanMs: number) => ({ key, serviceMs: meanMs * (0.5 + rand()) });
}

const CAPACITY = 256;

/**
 * BESH's throughput against a bare client that keeps 1.5 × the slots in flight (the best of the bench's direct
 * client), on the same pool and the same requests, over [from, to).
 */
interface Phase {
  until: number;
  mix: Mix;
  demand?: (t: number) => boolean;
}

function utilisation(
  phases: Phase[],
  measure: [number, number],
  opts: { servers?: boolean; initial?: number } = {},
): { ratio: number; run: PoolRun; ctl: AdaptiveLimit } {
  const mixAt =
    (p: typeof phases): Mix =>
    (t) =>
      (p.find((x) => t < x.until) ?? p.at(-1)!).mix(t);
  const demandAt = (t: number) => (phases.find((x) => t < x.until) ?? phases.at(-1)!).demand?.(t) ?? true;
  const clock = { t: 0 };
  const ctl = new AdaptiveLimit({
    // A quarter of MAX_WORKERS, as the worker starts it, and well under the slots.
    initial: opts.initial ?? 64,
    max: 1024,
    onChange: () => undefined,
    now: () => clock.t,
  });
  const end = phases.at(-1)!.until;
  const run = runPool(
    ctl,
    { capacity: CAPACITY, mix: mixAt(phases), demand: demandAt, from: 0, to: end, servers: opts.servers },
    clock,
  );
  const bare = runPool(
    { limit: CAPACITY * 1.5 },
    { capacity: CAPACITY, mix: mixAt(phases), demand: demandAt, from: 0, to: end },
    { t: 0 },
  );
  return { ratio: run.answered(...measure) / bare.answered(...measure), run, ctl };
}

describe('AdaptiveLimit', () => {
  const pause = (from: number, to: number) => (t: number) => t < from || t >= to;

  /** Each case: the phases of the pool's work, and the span whose throughput must hold. */
  const mixCases: {
    title: string;
    phases: (s: ReturnType<typeof spread>) => Phase[];
    measure: [number, number];
  }[] = [
    {
      title: 'a fast batch, then a slow one: the slow one',
      phases: (s) => [
        { until: 30_000, mix: () => s('chat', 40), demand: pause(29_000, 30_000) },
        { until: 90_000, mix: () => s('chat', 400) },
      ],
      measure: [30_000, 90_000],
    },
    {
      title: 'a slow batch, then a fast one: the fast one',
      phases: (s) => [
        { until: 60_000, mix: () => s('chat', 400), demand: pause(59_000, 60_000) },
        { until: 80_000, mix: () => s('chat', 40) },
      ],
      measure: [60_000, 80_000],
    },
    {
      title: 'an embeddings batch and a chat batch at the same time',
      phases: (s) => {
        const rand = mulberry32(33);
        return [{ until: 60_000, mix: () => (rand() < 0.5 ? s('embeddings', 15) : s('chat', 300)) }];
      },
      measure: [0, 60_000],
    },
    {
      title: 'a pool whose latency doubles halfway through a batch: the second half, after a ramp from 64',
      phases: (s) => [
        { until: 30_000, mix: () => s('chat', 200) },
        { until: 60_000, mix: () => s('chat', 400) },
      ],
      measure: [30_000, 60_000],
    },
  ];
  for (const servers of [false, true]) {
    const signal = servers ? "the servers' queue (vLLM /metrics)" : 'the client-side signal alone';
    describe(`follows a change of request mix, with ${signal}`, () => {
      for (const [i, c] of mixCases.entries()) {
        it(`${c.title} gets at least 0.9 of a bare client`, () => {
          const { ratio } = utilisation(c.phases(spread(i + 1)), c.measure, { servers });
          assert.ok(ratio >= 0.9, `at ${ratio.toFixed(3)} of the bare client`);
        });
      }
    });
  }

  it('does not queue far past the knee of a saturated pool: more concurrency that only adds latency is given back', () => {
    const s = spread(5);
    const { ratio, run } = utilisation([{ until: 60_000, mix: () => s('chat', 200) }], [0, 60_000]);
    assert.ok(ratio >= 0.9, `at ${ratio.toFixed(3)} of the bare client`);
    const late = run.limits.filter((l) => l.t >= 20_000).map((l) => l.limit);
    const mean = late.reduce((a, b) => a + b, 0) / late.length;
    // Probes overshoot for a moment; on average the limit sits near the slots, not at MAX_WORKERS (1,024).
    assert.ok(mean <= CAPACITY * 1.4, `mean limit ${mean.toFixed(0)} for ${CAPACITY} slots`);
    assert.ok(mean >= CAPACITY, `mean limit ${mean.toFixed(0)} leaves slots idle`);
  });

  it('carries no half-done probe down from one batch to the next: the limit left is one the pool took', () => {
    // A batch ends at ten different moments of the controller's probing; the limit waiting for the next one must
    // never be a probe's lowered value, below the slots.
    for (let i = 0; i < 10; i++) {
      const end = 20_000 + i * 317;
      const s = spread(20 + i);
      const { run } = utilisation(
        [
          { until: end, mix: () => s('chat', 200) },
          { until: end + 2_000, mix: () => s('chat', 200), demand: () => false },
        ],
        [0, end],
      );
      const left = run.limits.at(-1)!.limit;
      assert.ok(
        left >= CAPACITY,
        `a batch ending at ${end} ms left a limit of ${left} for ${CAPACITY} slots`,
      );
    }
  });

  it('keeps the servers’ queue short when it can read it', () => {
    const s = spread(6);
    const { run } = utilisation([{ until: 30_000, mix: () => s('chat', 200) }], [0, 30_000], {
      servers: true,
    });
    assert.ok(run.maxWaiting(10_000, 30_000) <= CAPACITY * 0.35, `${run.maxWaiting(10_000, 30_000)} waited`);
  });

  it('backs off on refusals (429/503) and holds near the point where they start', () => {
    const clock = { t: 0 };
    const ctl = new AdaptiveLimit({ initial: 256, max: 1024, onChange: () => undefined, now: () => clock.t });
    const s = spread(7);
    const run = runPool(
      ctl,
      { capacity: 512, mix: () => s('chat', 200), from: 0, to: 60_000, refuseAbove: 100 },
      clock,
    );
    const late = run.limits.filter((l) => l.t >= 20_000).map((l) => l.limit);
    assert.ok(Math.max(...late) <= 160, `limit reached ${Math.max(...late)} against refusals above 100`);
    assert.ok(Math.min(...late) >= 40, `limit collapsed to ${Math.min(...late)}`);
  });

  it('never exceeds MAX_WORKERS, and reaches it on a pool larger than that', () => {
    const clock = { t: 0 };
    const ctl = new AdaptiveLimit({ initial: 16, max: 64, onChange: () => undefined, now: () => clock.t });
    const s = spread(8);
    const run = runPool(ctl, { capacity: 1000, mix: () => s('chat', 100), from: 0, to: 20_000 }, clock);
    assert.ok(run.limits.every((l) => l.limit <= 64));
    assert.equal(run.limits.at(-1)!.limit, 64);
  });

  it('learns nothing without demand: the limit stays where it was', () => {
    const clock = { t: 0 };
    const changes: number[] = [];
    const ctl = new AdaptiveLimit({
      initial: 64,
      max: 1024,
      onChange: (l) => changes.push(l),
      now: () => clock.t,
    });
    const s = spread(9);
    runPool(
      ctl,
      { capacity: 1000, mix: () => s('chat', 100), from: 0, to: 20_000, demand: () => false },
      clock,
    );
    assert.deepEqual(changes, []);
    assert.equal(ctl.limit, 64);
  });
});
