import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DEFAULT_OUTPUT_TOKENS,
  MAX_OUTPUT_TOKENS,
  expectedContentPrefix,
  expectedEmbedding,
  fingerprint,
  simulatedResponse,
} from '../../src/simulator/answer';
import { parseCli, UsageError } from '../../src/simulator/main';
import { Simulator, SimulatorOptions, SimulatorStats, startSimulator } from '../../src/simulator/server';

type Json = Record<string, unknown>;

function origin(sim: Simulator): string {
  return sim.url.replace(/\/v1$/, '');
}

function post(sim: Simulator, path: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(origin(sim) + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...init.headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: init.signal,
  });
}

async function json(res: Response): Promise<Json> {
  const x: unknown = await res.json();
  assert.ok(typeof x === 'object' && x !== null && !Array.isArray(x), 'body is a JSON object');
  return x as Json;
}

/** Navigates a parsed body by keys/indices; fails the test when the shape is off. */
function at(x: unknown, ...path: (string | number)[]): unknown {
  for (const key of path) {
    assert.ok(typeof x === 'object' && x !== null, `expected an object at ${String(key)}`);
    x = (x as Record<string | number, unknown>)[key];
  }
  return x;
}

async function until(cond: () => Promise<boolean>, what: string, timeoutMs = 2000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

const chat = (content: string, extra: Json = {}): Json => ({
  model: 'm',
  messages: [{ role: 'user', content }],
  ...extra,
});

describe('simulator answers (pure)', () => {
  it('fingerprints deterministically and distinguishes bodies', () => {
    const a = fingerprint(chat('hi'));
    assert.match(a, /^[0-9a-f]{16}$/);
    assert.equal(fingerprint(chat('hi')), a);
    assert.notEqual(fingerprint(chat('ho')), a);
    assert.equal(expectedContentPrefix(chat('hi')), `SIM ${a}`);
  });

  it('sizes output by max_tokens > max_completion_tokens > max_output_tokens > default, capped', () => {
    const opts = { requestId: 'abc', created: 1 };
    const tokens = (extra: Json) =>
      simulatedResponse('/v1/chat/completions', chat('x', extra), opts).outputTokens;
    assert.equal(tokens({}), DEFAULT_OUTPUT_TOKENS);
    assert.equal(tokens({ max_tokens: 7, max_completion_tokens: 9 }), 7);
    assert.equal(tokens({ max_completion_tokens: 9, max_output_tokens: 11 }), 9);
    assert.equal(tokens({ max_output_tokens: 11 }), 11);
    assert.equal(tokens({ max_tokens: 100_000 }), MAX_OUTPUT_TOKENS);
    const body = chat('x', { max_tokens: 40 });
    const content = at(
      simulatedResponse('/v1/chat/completions', body, opts).json,
      'choices',
      0,
      'message',
      'content',
    );
    assert.equal(typeof content === 'string' && content.split(' ').length, 40);
  });
});

describe('simulator server', function () {
  this.timeout(10_000);
  let sim: Simulator;
  const start = async (o: SimulatorOptions = {}) => {
    sim = await startSimulator({ baseLatencyMs: 1, perTokenMs: 0, ...o });
    return sim;
  };
  const stats = async (): Promise<SimulatorStats> =>
    (await (await fetch(`${origin(sim)}/sim/stats`)).json()) as SimulatorStats;
  afterEach(() => sim?.close());

  it('answers chat completions with a provable fingerprint and exact usage', async () => {
    await start();
    const body = chat('hello there', { max_tokens: 12 });
    const res = await post(sim, '/v1/chat/completions', body);
    assert.equal(res.status, 200);
    const requestId = res.headers.get('x-request-id');
    assert.match(requestId ?? '', /^req_[0-9a-f]{32}$/);
    const out = await json(res);
    assert.equal(out.id, `chatcmpl-${requestId?.slice(4)}`);
    assert.equal(out.object, 'chat.completion');
    assert.equal(out.model, 'm');
    const content = at(out, 'choices', 0, 'message', 'content');
    assert.ok(typeof content === 'string' && content.startsWith(`SIM ${fingerprint(body)}`));
    assert.equal(content.split(' ').length, 12);
    const prompt = Math.ceil(JSON.stringify(body.messages).length / 4);
    assert.deepEqual(out.usage, { prompt_tokens: prompt, completion_tokens: 12, total_tokens: prompt + 12 });
  });

  it('answers completions, embeddings and responses in their OpenAI shapes', async () => {
    await start({ defaultOutputTokens: 5 });
    const cBody = { model: 'm', prompt: 'once upon a time' };
    const c = await json(await post(sim, '/v1/completions', cBody));
    assert.equal(c.object, 'text_completion');
    assert.ok(String(at(c, 'choices', 0, 'text')).startsWith(expectedContentPrefix(cBody)));
    assert.deepEqual(c.usage, { prompt_tokens: 5, completion_tokens: 5, total_tokens: 10 });

    const inputs = ['a', 'b', 'a'];
    const e = await json(await post(sim, '/v1/embeddings', { model: 'emb', input: inputs }));
    assert.equal(e.object, 'list');
    assert.equal(e.model, 'emb');
    const vectors = inputs.map((_, i) => at(e, 'data', i, 'embedding'));
    assert.deepEqual(vectors, inputs.map(expectedEmbedding));
    assert.equal(expectedEmbedding('a').length, 8);
    assert.notDeepEqual(vectors[0], vectors[1]);
    assert.deepEqual(e.usage, { prompt_tokens: 4, completion_tokens: 0, total_tokens: 4 });
    const single = await json(await post(sim, '/v1/embeddings', { model: 'emb', input: [1, 2, 3] }));
    assert.deepEqual(at(single, 'data'), [
      { object: 'embedding', index: 0, embedding: expectedEmbedding([1, 2, 3]) },
    ]);
    const b64 = await json(
      await post(sim, '/v1/embeddings', { model: 'e', input: 'a', encoding_format: 'base64' }),
    );
    const bytes = new Uint8Array(Buffer.from(String(at(b64, 'data', 0, 'embedding')), 'base64'));
    const decoded = new Float32Array(bytes.buffer);
    assert.deepEqual([...decoded], expectedEmbedding('a').map(Math.fround));

    const rBody = { model: 'm', input: 'hi', max_output_tokens: 3 };
    const r = await json(await post(sim, '/v1/responses', rBody));
    assert.equal(r.object, 'response');
    assert.match(String(r.id), /^resp_/);
    assert.equal(at(r, 'output', 0, 'content', 0, 'text'), `${expectedContentPrefix(rBody)} dolor`);
    assert.deepEqual(r.usage, {
      input_tokens: 1,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: 3,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: 4,
    });
    assert.equal((await stats()).outputTokens, 5 + 3);
  });

  it('rejects invalid bodies with OpenAI-shaped 400s and unknown routes with 404', async () => {
    await start();
    const cases: [string, unknown, string | null][] = [
      ['/v1/chat/completions', { messages: [] }, 'model'],
      ['/v1/chat/completions', { model: 'm', messages: 'hi' }, 'messages'],
      ['/v1/completions', { model: 'm' }, 'prompt'],
      ['/v1/embeddings', { model: 'm' }, 'input'],
      ['/v1/responses', { model: 'm' }, 'input'],
      ['/v1/chat/completions', '[1,2]', null],
      ['/v1/chat/completions', '{oops', null],
    ];
    for (const [path, body, param] of cases) {
      const res = await post(sim, path, body);
      assert.equal(res.status, 400, `${path} ${JSON.stringify(body)}`);
      const err = at(await json(res), 'error');
      assert.equal(at(err, 'type'), 'invalid_request_error');
      assert.equal(at(err, 'param'), param);
      assert.equal(typeof at(err, 'message'), 'string');
    }
    assert.equal((await fetch(`${origin(sim)}/v1/nope`)).status, 404);
    const models = await json(await fetch(`${sim.url}/models`));
    assert.equal(at(models, 'data', 0, 'id'), 'sim-model');
    assert.deepEqual((await stats()).byStatus, { '400': cases.length, '404': 1, '200': 1 });
  });

  it('answers 413 to an oversized body', async () => {
    await start({ maxBodyBytes: 1000 });
    const res = await post(sim, '/v1/chat/completions', chat('x'.repeat(2000)));
    assert.equal(res.status, 413);
  });

  it('saturates at capacity: extra requests wait in a queue, and a freed slot is taken at once', async () => {
    await start({ capacity: 2, baseLatencyMs: 100 });
    // Whenever a client sees its answer, the server has already moved the next queued request into service.
    const seen: [number, number, number][] = [];
    const all = Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        post(sim, '/v1/chat/completions', chat(`q${i}`)).then(async (r) => {
          assert.equal(r.status, 200);
          await r.arrayBuffer();
          const s = await stats();
          seen.push([s.received - s.completed, s.inService, s.queued]);
        }),
      ),
    );
    await until(async () => (await stats()).received === 6, 'all six requests to arrive');
    const mid = await stats();
    assert.equal(mid.inService, 2);
    assert.equal(mid.queued, 4);
    await all;
    for (const [unanswered, inService, queued] of seen)
      assert.deepEqual([inService, queued], [Math.min(2, unanswered), Math.max(0, unanswered - 2)]);
    const end = await stats();
    assert.equal(end.maxInService, 2);
    assert.equal(end.completed, 6);
    assert.equal(end.byEndpoint['/v1/chat/completions'], 6);
  });

  it("serves vLLM's queue gauges at /metrics, outside the counters", async () => {
    await start({ capacity: 2, baseLatencyMs: 60_000, model: 'sim-7b' });
    const gauge = async (name: string) => {
      const text = await (await fetch(`${origin(sim)}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(`${name}{`));
      assert.ok(line, `${name} in /metrics`);
      assert.match(line, /model_name="sim-7b"/);
      return Number(line.split(' ').at(-1));
    };
    assert.deepEqual(
      [await gauge('vllm:num_requests_running'), await gauge('vllm:num_requests_waiting')],
      [0, 0],
    );
    const a = new AbortController();
    const pending = Array.from({ length: 5 }, (_, i) =>
      post(sim, '/v1/chat/completions', chat(`q${i}`), { signal: a.signal }).catch(() => undefined),
    );
    await until(async () => (await stats()).received === 5, 'five requests to arrive');
    assert.deepEqual(
      [await gauge('vllm:num_requests_running'), await gauge('vllm:num_requests_waiting')],
      [2, 3],
    );
    const s = await stats();
    assert.equal(s.received, 5, 'scrapes are not counted as requests');
    assert.equal(s.byEndpoint['/metrics'], undefined);
    a.abort();
    await Promise.all(pending);
  });

  it('multiplies the service time of later requests by latencyFactor', async () => {
    await start({ baseLatencyMs: 150, perTokenMs: 0 });
    const timed = async () => {
      const t = performance.now();
      await (await post(sim, '/v1/chat/completions', chat('x'))).arrayBuffer();
      return performance.now() - t;
    };
    const before = await timed();
    sim.setFaults({ latencyFactor: 3 });
    const after = await timed();
    assert.ok(before >= 150 && before < 400, `before: ${before} ms`);
    assert.ok(after >= 450, `after: ${after} ms`);
    assert.throws(() => sim.setFaults({ latencyFactor: 0 }), /latencyFactor/);
  });

  it('frees the slot of a client that aborts in service, and drops one that aborts in queue', async () => {
    // The first request stalls far beyond the test's timeout: only freeing its slot lets the second one run.
    await start({ capacity: 1, faults: { stallRate: 1, stallMs: 10 * 60_000 } });
    const a = new AbortController();
    const first = post(sim, '/v1/chat/completions', chat('a'), { signal: a.signal });
    await until(async () => (await stats()).inService === 1, 'the first request in service');
    sim.setFaults({ stallRate: 0 });
    const second = post(sim, '/v1/chat/completions', chat('b'));
    const c = new AbortController();
    const third = post(sim, '/v1/chat/completions', chat('c'), { signal: c.signal });
    await until(async () => (await stats()).queued === 2, 'two requests in the queue');
    c.abort();
    await assert.rejects(third, { name: 'AbortError' });
    a.abort();
    await assert.rejects(first, { name: 'AbortError' });
    const res = await second;
    assert.equal(res.status, 200);
    const s = await stats();
    assert.equal(s.aborted, 2);
    assert.equal(s.inService, 0);
    assert.equal(s.queued, 0);
    assert.equal(s.completed, 1);
  });

  it('injects 429 with Retry-After, 500, 503 and malformed bodies', async () => {
    await start({ faults: { rate429Rate: 1, retryAfterSeconds: 3 } });
    const limited = await post(sim, '/v1/chat/completions', chat('x'));
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get('retry-after'), '3');
    assert.equal(at(await json(limited), 'error', 'code'), 'rate_limit_exceeded');

    sim.setFaults({ rate429Rate: 0, error500Rate: 1 });
    const failed = await post(sim, '/v1/chat/completions', chat('x'));
    assert.equal(failed.status, 500);
    assert.equal(at(await json(failed), 'error', 'type'), 'server_error');

    const set = await post(sim, '/sim/faults', { error500Rate: 0, error503Rate: 1 });
    assert.equal(set.status, 200);
    assert.equal((await post(sim, '/v1/completions', { model: 'm', prompt: 'p' })).status, 503);
    assert.equal((await post(sim, '/sim/faults', { error503Rat: 1 })).status, 400);

    sim.setFaults({ error503Rate: 0, malformedRate: 1 });
    const bad = await post(sim, '/v1/chat/completions', chat('x'));
    assert.equal(bad.status, 200);
    assert.equal(bad.headers.get('content-type'), 'application/json');
    const text = await bad.text();
    assert.ok(text.length > 0);
    assert.throws(() => JSON.parse(text));
    assert.deepEqual((await stats()).faultsInjected, { rate429: 1, error500: 1, error503: 1, malformed: 1 });
  });

  it('resets the socket so the client sees a connection error', async () => {
    await start({ faults: { resetRate: 1 } });
    await assert.rejects(post(sim, '/v1/chat/completions', chat('x')), TypeError);
    const s = await stats();
    assert.equal(s.faultsInjected.reset, 1);
    assert.equal(s.inService, 0);
    sim.setFaults({ resetRate: 0 });
    assert.equal((await post(sim, '/v1/chat/completions', chat('x'))).status, 200);
  });

  it('stalls a request long enough for a client timeout to abort it', async () => {
    await start({ faults: { stallRate: 1, stallMs: 5000 } });
    await assert.rejects(
      post(sim, '/v1/chat/completions', chat('x'), { signal: AbortSignal.timeout(80) }),
      (e: unknown) => e instanceof Error && e.name === 'TimeoutError',
    );
    await until(async () => (await stats()).aborted > 0, 'the server to notice the abort');
    const s = await stats();
    assert.equal(s.aborted, 1);
    assert.equal(s.inService, 0);
    assert.equal(s.faultsInjected.stall, 1);
  });

  it('goes down (503 everywhere, /health included) and comes back after downForMs', async () => {
    await start();
    sim.setFaults({ down: true });
    assert.equal((await fetch(`${origin(sim)}/health`)).status, 503);
    assert.equal((await post(sim, '/v1/chat/completions', chat('x'))).status, 503);
    sim.setFaults({ down: false });
    const health = await fetch(`${origin(sim)}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok' });

    assert.equal((await post(sim, '/sim/faults', { downForMs: 150 })).status, 200);
    assert.equal((await fetch(`${origin(sim)}/health`)).status, 503);
    assert.equal((await post(sim, '/v1/chat/completions', chat('x'))).status, 503);
    // POST /sim/faults with no change answers the current faults, and /sim/* is never down nor counted.
    const isDown = async () => at(await json(await post(sim, '/sim/faults', {})), 'down') === true;
    await until(async () => !(await isDown()), 'the simulator to come back by itself');
    assert.equal((await fetch(`${origin(sim)}/health`)).status, 200);
    assert.equal((await post(sim, '/v1/chat/completions', chat('x'))).status, 200);
    assert.equal((await stats()).faultsInjected.down, 4);
  });

  it('decides faults with a seeded PRNG: same seed, same sequence; reset reseeds', async () => {
    const statuses = async (s: Simulator) => {
      const out: number[] = [];
      for (let i = 0; i < 24; i++)
        out.push((await post(s, '/v1/completions', { model: 'm', prompt: 'p' })).status);
      return out;
    };
    const run = async (seed: number) => {
      const s = await startSimulator({
        baseLatencyMs: 0,
        perTokenMs: 0,
        seed,
        faults: { error500Rate: 0.5 },
      });
      try {
        const first = await statuses(s);
        s.reset();
        assert.equal(s.stats().received, 0);
        assert.deepEqual(await statuses(s), first);
        return first;
      } finally {
        await s.close();
      }
    };
    const a = await run(7);
    assert.ok(a.includes(200) && a.includes(500), String(a));
    assert.deepEqual(await run(7), a);
    assert.notDeepEqual(await run(8), a);
  });

  it('checks the API key on /v1 but not on /health or /sim', async () => {
    await start({ apiKey: 'sekret' });
    for (const authorization of [undefined, 'Bearer wrong', 'sekret']) {
      const res = await post(sim, '/v1/chat/completions', chat('x'), {
        headers: authorization ? { authorization } : {},
      });
      assert.equal(res.status, 401);
      assert.equal(at(await json(res), 'error', 'code'), 'invalid_api_key');
    }
    const ok = await post(sim, '/v1/chat/completions', chat('x'), {
      headers: { authorization: 'Bearer sekret' },
    });
    assert.equal(ok.status, 200);
    assert.equal((await fetch(`${origin(sim)}/health`)).status, 200);
    assert.equal((await stats()).byStatus['401'], 3);
  });
});

describe('simulator CLI', () => {
  it('parses flags, env fallbacks and replicas', () => {
    assert.deepEqual(parseCli(['--help'], {}), 'help');
    const one = parseCli(['--capacity', '8', '--error500-rate', '0.1'], {
      SIM_CAPACITY: '3',
      SIM_STALL_MS: '50',
    });
    assert.ok(one !== 'help');
    assert.equal(one.servers.length, 1);
    assert.equal(one.servers[0].port, 8000);
    assert.equal(one.servers[0].capacity, 8);
    assert.deepEqual(one.servers[0].faults, { error500Rate: 0.1, stallMs: 50 });
    const many = parseCli(['--replicas', '3', '--seed', '5'], { SIM_BASE_PORT: '9001' });
    assert.ok(many !== 'help');
    assert.deepEqual(
      many.servers.map((s) => [s.port, s.seed]),
      [
        [9001, 5],
        [9002, 6],
        [9003, 7],
      ],
    );
  });

  it('rejects bad values naming the flag', () => {
    assert.throws(
      () => parseCli(['--capacity', 'lots'], {}),
      (e: unknown) => {
        return e instanceof UsageError && e.message.includes('--capacity');
      },
    );
    assert.throws(() => parseCli([], { SIM_RESET_RATE: '2' }), /--reset-rate/);
    assert.throws(() => parseCli(['--bogus'], {}), UsageError);
  });

  it('exits with code 2 on an invalid flag and cleanly on SIGTERM', async function () {
    this.timeout(15_000);
    const run = (args: string[]) =>
      spawn(process.execPath, ['-r', 'ts-node/register', 'src/simulator/main.ts', ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    const exit = (p: ReturnType<typeof run>) =>
      new Promise<number | null>((resolve) => p.on('exit', (code) => resolve(code)));

    const bad = run(['--per-token-ms', '-1']);
    let stderr = '';
    bad.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    assert.equal(await exit(bad), 2);
    assert.match(stderr, /--per-token-ms/);

    const good = run(['--port', '0', '--capacity', '4']);
    const exited = exit(good);
    const line = await new Promise<string>((resolve) => {
      let out = '';
      good.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.trim());
      });
    });
    const m = /^vLLM simulator listening on (http:\/\/127\.0\.0\.1:\d+\/v1) \(capacity 4\)$/.exec(line);
    assert.ok(m, line);
    assert.equal((await fetch(`${m[1]}/models`)).status, 200);
    good.kill('SIGTERM');
    assert.equal(await exited, 0);
  });
});
