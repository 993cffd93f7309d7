import assert from 'node:assert/strict';
import { assertEveryLineOnce, batchLines, createBatch, toJsonl, waitForBatch } from '../support/batches';
import { exited, spawnEntry, until } from '../support/processes';
import { startStack, type Stack } from '../support/stack';

describe('Faults: an unreliable upstream and a killed worker lose nothing', function () {
  this.timeout(180_000);

  describe('an upstream that fails, throttles, stalls, resets and garbles', () => {
    let s: Stack;
    before(async () => {
      s = await startStack({
        env: { REQUEST_TIMEOUT_MS: '500', MAX_WORKERS: '16' },
        simulator: {
          capacity: 16,
          seed: 7,
          faults: {
            error500Rate: 0.05,
            rate429Rate: 0.05,
            retryAfterSeconds: 1,
            stallRate: 0.02,
            stallMs: 2000,
            resetRate: 0.02,
            malformedRate: 0.02,
          },
        },
      });
    });
    after(async () => s?.close());

    it('retries into success, sends 4xx to the error file, and yields every line exactly once', async () => {
      const input = batchLines(300);
      // Three requests the upstream rejects for good (no messages): a 400 is final, not retried.
      for (const i of [5, 150, 299]) delete input[i].body.messages;
      const created = await createBatch(s.openai, toJsonl(input));
      const done = await waitForBatch(s.openai, created.id, { timeoutMs: 120_000 });
      assert.equal(done.status, 'completed');
      const { out, err } = await assertEveryLineOnce(s.openai, done, input);
      const stats = s.sim.stats();
      for (const fault of ['error500', 'rate429', 'stall', 'reset', 'malformed']) {
        assert.ok((stats.faultsInjected[fault] ?? 0) > 0, `the simulator injected ${fault}`);
      }
      assert.deepEqual(err.map((l) => l.custom_id).sort(), ['req-150', 'req-299', 'req-5']);
      for (const l of err) {
        assert.equal(l.response?.status_code, 400);
        assert.equal(l.error, null);
      }
      assert.equal(out.length, 297, 'every transient fault was retried into a success');
    });
  });

  describe('a worker killed with SIGKILL mid-batch', () => {
    let s: Stack;
    before(async () => {
      s = await startStack({ worker: false, simulator: { capacity: 8, baseLatencyMs: 25 } });
    });
    after(async () => s?.close());

    it('is resumed by a new worker process, and every line ends up exactly once', async () => {
      const input = batchLines(1200);
      const created = await createBatch(s.openai, toJsonl(input));
      let worker = spawnEntry('worker', s.env, 'worker-kill-1');
      for (const [i, target] of [
        [1, 150],
        [2, 450],
      ]) {
        await until(
          `progress past ${target}`,
          async () => (await s.openai.batches.retrieve(created.id)).request_counts!.completed >= target,
          90_000,
        );
        worker.kill('SIGKILL');
        await exited(worker);
        worker = spawnEntry('worker', s.env, `worker-kill-${i + 1}`);
      }
      try {
        const done = await waitForBatch(s.openai, created.id, { timeoutMs: 150_000 });
        assert.equal(done.status, 'completed');
        const { out } = await assertEveryLineOnce(s.openai, done, input);
        assert.equal(out.length, 1200);
        // Only requests in flight at a kill are sent twice: at most MAX_WORKERS (64) per kill.
        const resent = s.sim.stats().received - 1200;
        assert.ok(resent <= 2 * 64, `${resent} requests were sent again`);
      } finally {
        worker.kill('SIGTERM');
        await exited(worker);
      }
    });
  });
});
