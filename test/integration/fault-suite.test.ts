import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NO_FAULTS } from '../../src/simulator/server';
import { startDevServer, type DevServer } from '../../temporal/dev-server';
import { assertEveryLineOnce, batchLines, createBatch, toJsonl, waitForBatch } from '../support/batches';
import { testDbKind } from '../support/database';
import { freePort } from '../support/ports';
import { exited, spawnEntry, until } from '../support/processes';
import { startStack, type Stack } from '../support/stack';

/** One row per fault tried, printed as a table when the suite ends. */
const table: Array<{ fault: string; outcome: string }> = [];
const record = (fault: string, outcome: string) => table.push({ fault, outcome });

const progressOf = async (s: Stack, id: string) =>
  (await s.openai.batches.retrieve(id)).request_counts!.completed;

describe('Fault suite: every line ends in exactly one file, whatever breaks', function () {
  this.timeout(240_000);
  after(() => {
    if (!table.length) return;
    const width = Math.max(...table.map((r) => r.fault.length));
    console.log(`\n  Fault table\n  ${'fault'.padEnd(width)}  outcome\n  ${'-'.repeat(width)}  -------`);
    for (const r of table) console.log(`  ${r.fault.padEnd(width)}  ${r.outcome}`);
  });

  describe('worker processes', () => {
    let s: Stack;
    beforeEach(async () => {
      s = await startStack({
        worker: false,
        // Segments every 100 ms: at this pool's ~320 req/s, one segment holds about 32 answers.
        env: { MAX_WORKERS: '64', CHECKPOINT_FLUSH_MS: '100' },
        simulator: { capacity: 8, baseLatencyMs: 25 },
      });
    });
    afterEach(async () => s?.close());

    it('a worker killed with SIGKILL three times in a row, restarted each time @store', async () => {
      const input = batchLines(1200);
      const created = await createBatch(s.openai, toJsonl(input));
      let worker = spawnEntry('worker', s.env, 'fault-kill-0');
      try {
        for (const [i, target] of [150, 400, 700].entries()) {
          await until(
            `progress past ${target}`,
            async () => (await progressOf(s, created.id)) >= target,
            90_000,
          );
          worker.kill('SIGKILL');
          await exited(worker);
          worker = spawnEntry('worker', s.env, `fault-kill-${i + 1}`);
        }
        const done = await waitForBatch(s.openai, created.id, { timeoutMs: 150_000 });
        assert.equal(done.status, 'completed');
        const { out } = await assertEveryLineOnce(s.openai, done, input);
        assert.equal(out.length, 1200);
        // Only requests in flight at a kill (at most MAX_WORKERS = 64), and answers not yet in a segment (at most
        // 100 ms of them: about 32), are sent again.
        const resent = s.sim.stats().received - 1200;
        assert.ok(resent <= 3 * (64 + 48), `${resent} requests were sent again`);
        record('worker SIGKILL x3, restarted', `completed 1200/1200, ${resent} requests re-sent`);
      } finally {
        worker.kill('SIGTERM');
        await exited(worker);
      }
    });

    it('two workers share the task queue; the one killed is replaced by the other @store', async () => {
      const input = batchLines(1000);
      const created = await createBatch(s.openai, toJsonl(input));
      const a = spawnEntry('worker', s.env, 'fault-two-a');
      const b = spawnEntry('worker', s.env, 'fault-two-b');
      try {
        await until('progress past 200', async () => (await progressOf(s, created.id)) >= 200, 90_000);
        a.kill('SIGKILL');
        await exited(a);
        const done = await waitForBatch(s.openai, created.id, { timeoutMs: 120_000 });
        assert.equal(done.status, 'completed');
        await assertEveryLineOnce(s.openai, done, input);
        record('one of two workers SIGKILLed', 'completed 1000/1000 by the survivor');
      } finally {
        b.kill('SIGTERM');
        await exited(b);
      }
    });

    it('SIGTERM drains: in-flight requests finish, nothing is sent twice, another worker resumes', async () => {
      await s.close();
      // Slow requests (400 ms) so that a SIGTERM surely lands while requests are in flight.
      s = await startStack({
        worker: false,
        env: { MAX_WORKERS: '8', SHUTDOWN_GRACE_SECONDS: '20' },
        simulator: { capacity: 8, baseLatencyMs: 400 },
      });
      const input = batchLines(120);
      const created = await createBatch(s.openai, toJsonl(input));
      const first = spawnEntry('worker', s.env, 'fault-sigterm-1');
      await until('requests in flight', () => s.sim.stats().inService >= 4, 60_000);
      const t = Date.now();
      first.kill('SIGTERM');
      assert.equal(await exited(first), 0, 'the worker exits cleanly');
      const drainMs = Date.now() - t;
      const stats = s.sim.stats();
      assert.equal(stats.aborted, 0, 'no in-flight request was cut off');
      assert.equal(stats.inService, 0);
      const second = spawnEntry('worker', s.env, 'fault-sigterm-2');
      try {
        const done = await waitForBatch(s.openai, created.id, { timeoutMs: 120_000 });
        assert.equal(done.status, 'completed');
        await assertEveryLineOnce(s.openai, done, input);
        assert.equal(s.sim.stats().received, 120, 'no request was sent twice');
        record('SIGTERM on the worker', `drained in ${drainMs} ms, completed 120/120, 0 re-sent`);
      } finally {
        second.kill('SIGTERM');
        await exited(second);
      }
    });
  });

  describe('one worker host running two worker processes (WORKER_PROCESSES=2)', () => {
    let s: Stack;
    before(async () => {
      s = await startStack({
        worker: false,
        env: { MAX_WORKERS: '64', CONCURRENCY_MODE: 'fixed', CHECKPOINT_FLUSH_MS: '100' },
        simulator: { capacity: 8, baseLatencyMs: 25 },
      });
    });
    after(async () => s?.close());

    const childrenOf = (pid: number) => {
      try {
        return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
          .split('\n')
          .filter(Boolean)
          .map(Number);
      } catch {
        return []; // pgrep exits 1 when there are none
      }
    };

    it('shares MAX_WORKERS, sums their metrics, restarts a killed process, and drains both on SIGTERM', async () => {
      const port = await freePort();
      const { key } = await s.keys.create({ name: 'metrics', role: 'operator' });
      const host = spawnEntry(
        'worker',
        { ...s.env, WORKER_PROCESSES: '2', WORKER_METRICS_PORT: String(port) },
        'fault-processes',
      );
      try {
        await until('two worker processes', () => childrenOf(host.pid!).length === 2, 90_000);
        const input = batchLines(1200);
        const created = await createBatch(s.openai, toJsonl(input));
        await until('progress past 300', async () => (await progressOf(s, created.id)) >= 300, 90_000);
        // Each process allows its half of the 64 slots; the host's /metrics adds them up.
        const text = await (
          await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${key}` } })
        ).text();
        assert.match(text, /^besh_upstream_concurrency_limit\{pool="default"\} 64$/m);
        const [victim] = childrenOf(host.pid!);
        process.kill(victim, 'SIGKILL');
        await until(
          'the killed process replaced',
          () => childrenOf(host.pid!).length === 2 && !childrenOf(host.pid!).includes(victim),
          90_000,
        );
        const done = await waitForBatch(s.openai, created.id, { timeoutMs: 150_000 });
        assert.equal(done.status, 'completed');
        await assertEveryLineOnce(s.openai, done, input);
        const children = childrenOf(host.pid!);
        host.kill('SIGTERM');
        assert.equal(await exited(host), 0, 'the host exits cleanly once both processes drained');
        for (const pid of children)
          assert.throws(() => process.kill(pid, 0), 'no worker process outlives the host');
        record(
          'WORKER_PROCESSES=2, one process SIGKILLed',
          'completed 1200/1200; replaced; SIGTERM drained both',
        );
      } finally {
        if (host.exitCode === null) host.kill('SIGKILL');
      }
    });
  });

  describe('the Temporal server (file-backed) stopped and restarted mid-batch', () => {
    let server: DevServer;
    let s: Stack;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'besh-temporal-'));
    let port: number;
    before(async () => {
      port = await freePort();
      server = await startDevServer({ port, uiPort: null, dbFile: path.join(dir, 'temporal.sqlite') });
      s = await startStack({
        worker: false,
        env: { TEMPORAL_ADDRESS: server.address },
        simulator: { capacity: 8, baseLatencyMs: 25 },
      });
    });
    after(async () => {
      await s?.close();
      await server?.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('resumes from the server’s file and completes', async () => {
      const input = batchLines(1000);
      const created = await createBatch(s.openai, toJsonl(input));
      const worker = spawnEntry('worker', s.env, 'fault-temporal');
      try {
        await until('progress past 200', async () => (await progressOf(s, created.id)) >= 200, 90_000);
        await server.stop();
        await new Promise((r) => setTimeout(r, 3000));
        server = await startDevServer({ port, uiPort: null, dbFile: path.join(dir, 'temporal.sqlite') });
        const done = await waitForBatch(s.openai, created.id, { timeoutMs: 150_000 });
        assert.equal(done.status, 'completed');
        await assertEveryLineOnce(s.openai, done, input);
        record(
          'Temporal dev server stopped 3 s, restarted',
          `completed 1000/1000, ${s.sim.stats().received - 1000} re-sent`,
        );
      } finally {
        worker.kill('SIGTERM');
        await exited(worker);
      }
    });
  });

  describe('PostgreSQL restarted mid-batch', () => {
    let s: Stack;
    before(async function () {
      if (testDbKind !== 'postgres') this.skip();
      s = await startStack({ simulator: { capacity: 8, baseLatencyMs: 25 } });
    });
    after(async () => s?.close());

    it('the API answers 503 in the OpenAI shape meanwhile, and the batch completes', async () => {
      const input = batchLines(1000);
      const created = await createBatch(s.openai, toJsonl(input));
      await until('progress past 200', async () => (await progressOf(s, created.id)) >= 200, 90_000);
      const cluster = fs.readdirSync('/etc/postgresql')[0];
      const restart = new Promise<void>((resolve, reject) => {
        try {
          execFileSync('pg_ctlcluster', [
            '--skip-systemctl-redirect',
            cluster,
            'main',
            'restart',
            '-m',
            'fast',
          ]);
          resolve();
        } catch (err) {
          reject(err as Error);
        }
      });
      await restart;
      // The pool holds connections PostgreSQL just closed: the next calls find out, answer 503, and reconnect.
      const statuses = new Map<number, number>();
      let shape: unknown = null;
      for (let i = 0; i < 20; i++) {
        const res = await fetch(`${s.baseURL}/batches/${created.id}`, {
          headers: { authorization: `Bearer ${s.keyA}` },
        });
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status === 503) shape = await res.json();
        else await res.arrayBuffer();
      }
      for (const status of statuses.keys()) assert.ok([200, 503].includes(status), `status ${status}`);
      if (shape)
        assert.deepEqual(Object.keys((shape as { error: object }).error).sort(), [
          'code',
          'message',
          'param',
          'type',
        ]);
      const done = await waitForBatch(s.openai, created.id, { timeoutMs: 150_000 });
      assert.equal(done.status, 'completed');
      await assertEveryLineOnce(s.openai, done, input);
      record(
        'PostgreSQL restarted',
        `API answered ${[...statuses].map(([k, v]) => `${v}x${k}`).join(', ')}; completed 1000/1000`,
      );
    });
  });

  describe('the API process killed during an upload', () => {
    let s: Stack;
    before(async () => {
      s = await startStack({ worker: false });
    });
    after(async () => s?.close());

    it('leaves no partial file visible or listed @store', async () => {
      const port = await freePort();
      const env = { ...s.env, BESH_PORT: String(port) };
      let api = spawnEntry('api', env, 'fault-api-1');
      const base = `http://127.0.0.1:${port}`;
      await until(
        'API up',
        () =>
          fetch(`${base}/health`).then(
            (r) => r.ok,
            () => false,
          ),
        60_000,
      );
      // A slow multipart upload: the process dies while the file part is still arriving.
      const boundary = 'besh-fault-boundary';
      const head = `--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="partial.jsonl"\r\nContent-Type: application/octet-stream\r\n\r\n`;
      const line = toJsonl(batchLines(1));
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (sent === 0) controller.enqueue(new TextEncoder().encode(head));
          controller.enqueue(new TextEncoder().encode(line.repeat(200)));
          sent++;
          await new Promise((r) => setTimeout(r, 50));
        },
      });
      const upload = fetch(`${base}/v1/files`, {
        method: 'POST',
        body,
        duplex: 'half',
        headers: {
          authorization: `Bearer ${s.keyA}`,
          'content-type': `multipart/form-data; boundary=${boundary}`,
        },
      } as RequestInit).catch((e: unknown) => e);
      await until('upload under way', () => sent >= 10, 30_000);
      api.kill('SIGKILL');
      await exited(api);
      assert.ok((await upload) instanceof Error, 'the client saw the connection drop');
      api = spawnEntry('api', env, 'fault-api-2');
      try {
        await until(
          'API up again',
          () =>
            fetch(`${base}/health`).then(
              (r) => r.ok,
              () => false,
            ),
          60_000,
        );
        const res = await fetch(`${base}/v1/files`, { headers: { authorization: `Bearer ${s.keyA}` } });
        assert.deepEqual(((await res.json()) as { data: unknown[] }).data, []);
        assert.deepEqual(await s.storedFiles(), [], 'no blob was stored, and no write was left unfinished');
        record('API SIGKILLed during an upload', 'no file listed or stored; the client saw the drop');
      } finally {
        api.kill('SIGTERM');
        await exited(api);
      }
    });
  });

  describe('the upstream', () => {
    let s: Stack;
    before(async () => {
      s = await startStack({
        env: { REQUEST_TIMEOUT_MS: '500', MAX_WORKERS: '16' },
        simulator: {
          capacity: 16,
          seed: 7,
          faults: {
            error500Rate: 0.05,
            error503Rate: 0.03,
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

    it('500s, 503s, 429 with Retry-After, stalls, resets and malformed bodies: retried into success; 4xx final', async () => {
      const input = batchLines(300);
      // Three requests the upstream rejects for good (no messages): a 400 is final, not retried.
      for (const i of [5, 150, 299]) delete input[i].body.messages;
      const created = await createBatch(s.openai, toJsonl(input));
      const done = await waitForBatch(s.openai, created.id, { timeoutMs: 120_000 });
      assert.equal(done.status, 'completed');
      const { out, err } = await assertEveryLineOnce(s.openai, done, input);
      const injected = s.sim.stats().faultsInjected;
      for (const fault of ['error500', 'error503', 'rate429', 'stall', 'reset', 'malformed']) {
        assert.ok((injected[fault] ?? 0) > 0, `the simulator injected ${fault}`);
      }
      assert.deepEqual(err.map((l) => l.custom_id).sort(), ['req-150', 'req-299', 'req-5']);
      for (const l of err) {
        assert.equal(l.response?.status_code, 400);
        assert.equal(l.error, null);
      }
      assert.equal(out.length, 297, 'every transient fault was retried into a success');
      record(
        'upstream 500/503/429/stall/reset/malformed',
        `completed: 297 ok, 3 final 400s; injected ${JSON.stringify(injected)}`,
      );
    });

    it('an upstream down for 30 s, then back: every request succeeds', async () => {
      s.sim.setFaults(NO_FAULTS);
      const input = batchLines(200);
      const created = await createBatch(s.openai, toJsonl(input));
      await until('progress', async () => (await progressOf(s, created.id)) >= 20, 60_000);
      s.sim.setFaults({ downForMs: 30_000 });
      const done = await waitForBatch(s.openai, created.id, { timeoutMs: 180_000 });
      assert.equal(done.status, 'completed');
      const { out } = await assertEveryLineOnce(s.openai, done, input);
      assert.equal(out.length, 200);
      record('upstream down 30 s, then back', 'completed 200/200, all successful');
    });
  });
});
