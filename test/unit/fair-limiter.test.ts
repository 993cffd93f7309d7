import assert from 'node:assert/strict';
import { FairLimiter } from '../../activities/fair-limiter';

/** Lets every already-settled promise run its callbacks. */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Acquires a permit and records the key in `order` when it is granted. */
function take(limiter: FairLimiter, key: string, order: string[], signal?: AbortSignal) {
  return limiter.acquire(key, signal).then((release) => {
    order.push(key);
    return release;
  });
}

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

  it("serves a key's waiters by priority (a batch's oldest chunk first), FIFO within a priority", async () => {
    const limiter = new FairLimiter(1);
    const hold = await limiter.acquire('a');
    const order: string[] = [];
    const waits = [
      ['p5', 5],
      ['p1', 1],
      ['p3', 3],
      ['p1b', 1],
    ].map(([name, priority]) =>
      limiter.acquire('a', undefined, priority as number).then((release) => {
        order.push(name as string);
        release();
      }),
    );
    hold();
    await Promise.all(waits);
    assert.deepEqual(order, ['p1', 'p1b', 'p3', 'p5']);
  });
});
