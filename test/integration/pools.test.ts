import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../../src/paths';
import { startSimulator, type Simulator } from '../../src/simulator/server';
import { assertEveryLineOnce, batchLines, createBatch, toJsonl, waitForBatch } from '../support/batches';
import { testOutputDir } from '../support/global';
import { findNginx, loopbackNginxArgs } from '../support/nginx';
import { freePort } from '../support/ports';
import { exited, until } from '../support/processes';
import { startStack, type Stack } from '../support/stack';

const CHAT = 'org/chat-model';
const CODE = 'org/code-model';
const SLOTS = 8;

/** Inference requests a pool's simulator received. */
const inferences = (s: Stack, pool: string) => s.pools[pool].stats().byEndpoint['/v1/chat/completions'] ?? 0;

describe('Several models on several pools (UPSTREAMS)', function () {
  this.timeout(120_000);
  let s: Stack;
  before(async () => {
    // Two pools, a simulator each; a fixed limit of 8 slots per pool, so that a stalled pool fills its own.
    s = await startStack({
      pools: {
        chat: { models: [CHAT], simulator: { model: CHAT } },
        code: { models: [CODE], simulator: { model: CODE } },
      },
      env: { MAX_WORKERS: String(SLOTS), CONCURRENCY_MODE: 'fixed' },
    });
  });
  after(async () => s?.close());

  it("runs each model's batch on its own pool", async () => {
    const chatInput = batchLines(40, '/v1/chat/completions', CHAT);
    const codeInput = batchLines(30, '/v1/chat/completions', CODE);
    const [chat, code] = await Promise.all([
      createBatch(s.openai, toJsonl(chatInput)),
      createBatch(s.openai, toJsonl(codeInput)),
    ]);
    const [chatDone, codeDone] = await Promise.all([
      waitForBatch(s.openai, chat.id),
      waitForBatch(s.openai, code.id),
    ]);
    assert.equal(chatDone.status, 'completed');
    assert.equal(codeDone.status, 'completed');
    const { out } = await assertEveryLineOnce(s.openai, chatDone, chatInput);
    assert.equal(out.length, 40);
    await assertEveryLineOnce(s.openai, codeDone, codeInput);
    assert.equal(inferences(s, 'chat'), 40, "every chat request went to the chat pool's server");
    assert.equal(inferences(s, 'code'), 30, "every code request went to the code pool's server");
    assert.equal(s.sim.stats().received, 0, 'nothing went to VLLM_BASE_URL');
  });

  it('fails a batch whose model no pool serves with model_not_found and its line', async () => {
    const lines = batchLines(3, '/v1/chat/completions', 'gpt-4o');
    // A blank first line: the error names the line as the file numbers it.
    const created = await createBatch(s.openai, '\n' + toJsonl(lines));
    const done = await waitForBatch(s.openai, created.id);
    assert.equal(done.status, 'failed');
    assert.deepEqual(
      done.errors?.data?.map((e) => ({ code: e.code, line: e.line, param: e.param })),
      [{ code: 'model_not_found', line: 2, param: 'body.model' }],
    );
    assert.match(done.errors!.data![0].message!, /'gpt-4o' is not served here/);
  });

  it('lists the models of both pools through the SDK, a pool that is down included', async () => {
    const ids = async () => (await s.openai.models.list()).data.map((m) => m.id).sort();
    assert.deepEqual(await ids(), [CHAT, CODE]);
    s.pools.code.setFaults({ down: true });
    try {
      assert.deepEqual(await ids(), [CHAT, CODE], 'a configured model is listed while its pool is down');
      assert.equal((await s.openai.models.retrieve(CODE)).id, CODE);
    } finally {
      s.pools.code.setFaults({ down: false });
    }
  });

  it("a stalled pool holds back no batch of the other pool; the dashboard shows each pool's numbers", async () => {
    // Every chat request hangs a minute: the chat batch holds all 8 of its pool's slots meanwhile.
    s.pools.chat.setFaults({ stallRate: 1, stallMs: 60_000 });
    const stalled = await createBatch(s.openai, toJsonl(batchLines(40, '/v1/chat/completions', CHAT)));
    try {
      await until('the chat pool full', () => s.pools.chat.stats().inService === SLOTS);
      const codeBefore = inferences(s, 'code');
      const input = batchLines(60, '/v1/chat/completions', CODE);
      const code = await createBatch(s.openai, toJsonl(input));
      // With one limiter for both pools it would wait for the stalled requests (a minute); here it runs at once.
      const done = await waitForBatch(s.openai, code.id, { timeoutMs: 40_000 });
      assert.equal(done.status, 'completed');
      await assertEveryLineOnce(s.openai, done, input);
      assert.equal(inferences(s, 'code') - codeBefore, 60);
      assert.equal(s.pools.chat.stats().inService, SLOTS, 'the chat pool is still stalled');
      assert.equal((await s.openai.batches.retrieve(stalled.id)).request_counts?.completed, 0);

      // The worker reports every 5 s; the API sums the fresh rows per pool.
      type PoolView = { pool: string; in_flight: number; limit: number; requests_total: number };
      const pools = async () => {
        const res = await fetch(`${s.baseURL}/dashboard/pools`, {
          headers: { authorization: `Bearer ${s.keyA}` },
        });
        assert.equal(res.status, 200);
        const body = (await res.json()) as { object: string; data: PoolView[] };
        assert.equal(body.object, 'dashboard.pools');
        return Object.fromEntries(body.data.map((p) => [p.pool, p]));
      };
      await until(
        'the dashboard to show the stalled chat pool and the code requests',
        async () => {
          const p = await pools();
          return p.chat?.in_flight === SLOTS && (p.code?.requests_total ?? 0) >= codeBefore + 60;
        },
        20_000,
      );
      const p = await pools();
      assert.deepEqual(Object.keys(p).sort(), ['chat', 'code']);
      assert.equal(p.chat.limit, SLOTS);
      assert.equal(p.code.in_flight, 0);
    } finally {
      await s.openai.batches.cancel(stalled.id);
      await waitForBatch(s.openai, stalled.id);
      s.pools.chat.setFaults({ stallRate: 0 });
    }
  });
});

describe('The 8-GPU two-model layout: nginx/nginx-8gpu-2models.conf in front of eight simulators', function () {
  this.timeout(120_000);
  let tmp: string | undefined;
  const sims: Simulator[] = [];
  let nginx: ChildProcess | undefined;
  let s: Stack | undefined;
  let lb: string;

  before(async function () {
    const nginxBin = findNginx();
    if (!nginxBin) {
      console.log('      skipped: nginx is not installed; `make deploy-tools` installs it');
      this.skip();
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'besh-nginx-2models-'));
    // vllm-1..4 serve model A, vllm-5..8 model B, as the compose file's alternative runs them.
    for (let i = 0; i < 8; i++) {
      sims.push(
        await startSimulator({ model: i < 4 ? CHAT : CODE, capacity: 8, baseLatencyMs: 5, perTokenMs: 0 }),
      );
    }
    const port = await freePort();
    execFileSync('bash', [
      path.join(projectRoot, 'scripts', 'nginx-loopback-conf.sh'),
      path.join(projectRoot, 'nginx', 'nginx-8gpu-2models.conf'),
      tmp,
      String(port),
      ...sims.map((sim) => String(sim.port)),
    ]);
    const log = fs.openSync(path.join(testOutputDir, 'nginx-2models.log'), 'w');
    nginx = spawn(nginxBin!, loopbackNginxArgs(tmp), { stdio: ['ignore', log, log] });
    lb = `http://127.0.0.1:${port}`;
    await until(
      'nginx /health',
      async () => (await fetch(`${lb}/health`).catch(() => null))?.status === 200,
      20_000,
    );
    const pools = {
      a: { urls: [`${lb}/a/v1`], models: [CHAT] },
      b: { urls: [`${lb}/b/v1`], models: [CODE] },
    };
    s = await startStack({ env: { UPSTREAMS: JSON.stringify({ pools }), MAX_WORKERS: '32' } });
  });

  after(async () => {
    await s?.close();
    if (nginx) {
      nginx.kill('SIGTERM');
      await exited(nginx);
    }
    await Promise.all(sims.map((sim) => sim.close()));
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("sends each model's batch to its own four servers; /health needs both groups", async () => {
    const inputA = batchLines(200, '/v1/chat/completions', CHAT);
    const inputB = batchLines(120, '/v1/chat/completions', CODE);
    const [a, b] = await Promise.all([
      createBatch(s!.openai, toJsonl(inputA)),
      createBatch(s!.openai, toJsonl(inputB)),
    ]);
    for (const [batch, input] of [
      [a, inputA],
      [b, inputB],
    ] as const) {
      const done = await waitForBatch(s!.openai, batch.id);
      assert.equal(done.status, 'completed');
      await assertEveryLineOnce(s!.openai, done, input);
    }
    const received = sims.map((sim) => sim.stats().byEndpoint['/v1/chat/completions'] ?? 0);
    assert.equal(
      received.slice(0, 4).reduce((x, y) => x + y),
      200,
      `model A on GPUs 0-3 (${received.join(', ')})`,
    );
    assert.equal(
      received.slice(4).reduce((x, y) => x + y),
      120,
      `model B on GPUs 4-7 (${received.join(', ')})`,
    );
    assert.ok(
      received.every((n) => n > 0),
      `each server had a share (${received.join(', ')})`,
    );
    assert.deepEqual((await s!.openai.models.list()).data.map((m) => m.id).sort(), [CHAT, CODE]);

    for (const sim of sims.slice(4)) sim.setFaults({ down: true });
    try {
      assert.notEqual((await fetch(`${lb}/health`)).status, 200, 'group B down: not healthy');
    } finally {
      for (const sim of sims.slice(4)) sim.setFaults({ down: false });
    }
    assert.equal((await fetch(`${lb}/health`)).status, 200);
  });
});
