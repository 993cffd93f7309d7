import assert from 'node:assert/strict';
import { setMaxListeners } from 'node:events';
import { FairLimiter, PRIORITY_WEIGHTS, type KeyClass } from '../../activities/fair-limiter';

/** Lets every already-settled promise run its callbacks. */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Acquires a permit and records the key in `order` when it is granted. */
function take(limiter: FairLimiter, key: string, order: string[], signal?: AbortSignal) {
  return limiter.acquire(key, signal).then((release) => {
    order.push(key);
    return release;
  });
}

/**
 * Keys compete for `limiter` until `grants` permits were given: each key has two holders, each taking a permit,
 * keeping it for a tick and asking again, so every key always has a waiter. Answers the keys in grant order.
 */
async function contend(limiter: FairLimiter, classes: Record<string, KeyClass>, grants: number) {
  const order: string[] = [];
  const stop = new AbortController();
  setMaxListeners(0, stop.signal);
  const holder = async (key: string) => {
    while (!stop.signal.aborted) {
      const release = await limiter.acquire(key, stop.signal, 0, classes[key]).catch(() => null);
      if (!release) return;
      order.push(key);
      if (order.length === grants) stop.abort();
      await flush();
      release();
    }
  };
  await Promise.all(Object.keys(classes).flatMap((key) => [holder(key), holder(key)]));
  return order;
}

const count = (order: string[], ...keys: string[]) => order.filter((k) => keys.includes(k)).length;

describe('FairLimiter', () => {
  it('never has more than capacity permits out at once', async () => {
    const limiter = new FairLimiter(3);
    let out = 0;
    let peak = 0;
    const work = async (key: string, ticks: number) => {
      const release = await limiter.acquire(key);
      out++;
      peak = Math.max(peak, out);
      assert.ok(limiter.active <= 3);
      for (let t = 0; t < ticks; t++) await flush();
      out--;
      release();
    };
    await Promise.all(Array.from({ length: 20 }, (_, i) => work(i % 2 ? 'a' : 'b', (i % 4) + 1)));
    assert.equal(peak, 3);
    assert.equal(limiter.active, 0);
    assert.equal(limiter.waiting, 0);
  });

  it('serves the waiters of two keys round-robin', async () => {
    const limiter = new FairLimiter(1);
    const order: string[] = [];
    // Each holder gives its permit back on the next tick, whatever order the grants come in.
    const hold = (key: string) => take(limiter, key, order).then((release) => setImmediate(release));
    const keys = ['A', 'B'].flatMap((k) => Array.from({ length: 5 }, () => k));
    await Promise.all(keys.map(hold));
    await flush();
    assert.equal(limiter.active, 0);
    assert.deepEqual(order, ['A', 'A', 'B', 'A', 'B', 'A', 'B', 'A', 'B', 'B']);
  });

  it('removes an aborted waiter, rejects it with the reason and grants its permit to the next', async () => {
    const limiter = new FairLimiter(1);
    const order: string[] = [];
    const first = await limiter.acquire('A');
    const controller = new AbortController();
    const aborted = take(limiter, 'B', order, controller.signal);
    const next = take(limiter, 'C', order);
    assert.equal(limiter.waiting, 2);

    const reason = new Error('cancelled');
    controller.abort(reason);
    await assert.rejects(aborted, (err) => err === reason);
    assert.equal(limiter.waiting, 1);
    assert.equal(limiter.active, 1);

    first();
    (await next)();
    assert.deepEqual(order, ['C']);
    assert.equal(limiter.active, 0);
  });

  it('rejects at once with the reason when the signal is already aborted', async () => {
    const limiter = new FairLimiter(1);
    const reason = new Error('gone');
    await assert.rejects(limiter.acquire('A', AbortSignal.abort(reason)), (err) => err === reason);
    assert.equal(limiter.active, 0);
    assert.equal(limiter.waiting, 0);
  });

  it('grants waiting permits at once when the limit is raised', async () => {
    const limiter = new FairLimiter(1);
    const order: string[] = [];
    await limiter.acquire('A');
    void take(limiter, 'A', order);
    void take(limiter, 'B', order);
    void take(limiter, 'C', order);
    await flush();
    assert.deepEqual(order, []);

    limiter.setLimit(3);
    await flush();
    assert.deepEqual(order, ['A', 'B']);
    assert.equal(limiter.active, 3);
    assert.equal(limiter.waiting, 1);
  });

  it('lowers the limit as permits are released', async () => {
    const limiter = new FairLimiter(3);
    const releases = await Promise.all([limiter.acquire('A'), limiter.acquire('A'), limiter.acquire('A')]);
    const order: string[] = [];
    void take(limiter, 'B', order);
    limiter.setLimit(1);
    assert.equal(limiter.limit, 1);

    releases[0]();
    releases[1]();
    await flush();
    assert.deepEqual(order, [], 'still one permit out, which is the new limit');
    assert.equal(limiter.active, 1);

    releases[2]();
    await flush();
    assert.deepEqual(order, ['B']);
    assert.equal(limiter.active, 1);
  });

  it('releases only once when a release function is called twice', async () => {
    const limiter = new FairLimiter(2);
    const a = await limiter.acquire('A');
    await limiter.acquire('A');
    const order: string[] = [];
    void take(limiter, 'B', order);
    void take(limiter, 'C', order);

    a();
    a();
    await flush();
    assert.deepEqual(order, ['B']);
    assert.equal(limiter.active, 2);
    assert.equal(limiter.waiting, 1);
  });

  it("serves a key's waiters by order (a batch's oldest chunk first), FIFO within an order", async () => {
    const limiter = new FairLimiter(1);
    const hold = await limiter.acquire('a');
    const order: string[] = [];
    const waits = [
      ['p5', 5],
      ['p1', 1],
      ['p3', 3],
      ['p1b', 1],
    ].map(([name, rank]) =>
      limiter.acquire('a', undefined, rank as number).then((release) => {
        order.push(name as string);
        release();
      }),
    );
    hold();
    await Promise.all(waits);
    assert.deepEqual(order, ['p1', 'p1b', 'p3', 'p5']);
  });

  it('shares the slots between priorities by their weights, 8 : 4 : 1, under contention', async () => {
    const limiter = new FairLimiter(2);
    const order = await contend(
      limiter,
      { h: { priority: 'high' }, n: { priority: 'normal' }, l: { priority: 'low' } },
      1300,
    );
    assert.deepEqual(PRIORITY_WEIGHTS, { high: 8, normal: 4, low: 1 });
    for (const [key, share] of [
      ['h', 8 / 13],
      ['n', 4 / 13],
      ['l', 1 / 13],
    ] as const) {
      const got = count(order, key) / order.length;
      assert.ok(
        Math.abs(got - share) < 0.02,
        `${key}: ${got.toFixed(3)} of the grants, expected ${share.toFixed(3)}`,
      );
    }
    // Low is served within every stretch of 13 grants, not at the end.
    for (let i = 0; i + 13 <= order.length; i += 13)
      assert.ok(order.slice(i, i + 13).includes('l'), `stretch ${i}`);
    assert.equal(limiter.active, 0);
  });

  it('keeps the low priority at its minimum share however many high batches compete', async () => {
    const high = Object.fromEntries(
      Array.from({ length: 6 }, (_, i) => [`h${i}`, { priority: 'high', deadlineMs: 1000 + i }]),
    ) as Record<string, KeyClass>;
    const order = await contend(new FairLimiter(3), { ...high, l: { priority: 'low' } }, 900);
    const low = count(order, 'l') / order.length;
    assert.ok(low >= 1 / 9 - 0.01, `low got ${low.toFixed(3)} of the grants, its minimum is 1/9`);
    // The high batches share their priority's part evenly.
    const perHigh = Object.keys(high).map((k) => count(order, k));
    assert.ok(Math.max(...perHigh) - Math.min(...perHigh) <= 4, perHigh.join(','));
  });

  it('within a priority, serves the earliest deadline first in every round', async () => {
    const limiter = new FairLimiter(1);
    const hold = await limiter.acquire('x');
    const order: string[] = [];
    const cls: Record<string, KeyClass> = {
      late: { priority: 'normal', deadlineMs: 3_000 },
      none: { priority: 'normal' },
      early: { priority: 'normal', deadlineMs: 1_000 },
    };
    const waits = ['late', 'none', 'early', 'late', 'none', 'early'].map((key) =>
      limiter.acquire(key, undefined, 0, cls[key]).then((release) => {
        order.push(key);
        release();
      }),
    );
    hold();
    await Promise.all(waits);
    // Round-robin between the keys, each round in deadline order; no deadline goes last.
    assert.deepEqual(order, ['early', 'late', 'none', 'early', 'late', 'none']);
  });

  it('banks no credit for a priority that was idle: it joins at the current virtual time', async () => {
    const limiter = new FairLimiter(1);
    // Low runs alone for a while; had high kept its pass from the start, it would then take every slot.
    await contend(limiter, { l: { priority: 'low' } }, 200);
    const order = await contend(limiter, { h: { priority: 'high' }, l: { priority: 'low' } }, 90);
    assert.ok(count(order.slice(0, 18), 'l') >= 1, order.slice(0, 18).join(','));
    assert.ok(Math.abs(count(order, 'l') - 10) <= 2, `low got ${count(order, 'l')} of 90`);
  });
});
