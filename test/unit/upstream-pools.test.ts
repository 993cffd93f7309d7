import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Upstream } from '../../activities/upstream';
import { UpstreamPools } from '../../activities/upstream-pools';
import { loadConfig } from '../../src/config';
import { registry } from '../../src/metrics/registry';

const ENDPOINT = '/v1/chat/completions';
const BODY = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });

/** A model server that answers at once, or holds every request while `holding`; counts what it received. */
class Server {
  received = 0;
  holding = false;
  readonly held: http.ServerResponse[] = [];
  private readonly server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      this.received++;
      if (this.holding) this.held.push(res);
      else Server.answer(res);
    });
  });

  static answer(res: http.ServerResponse): void {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"object":"chat.completion"}');
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
  }

  release(): void {
    for (const res of this.held.splice(0)) Server.answer(res);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const noSlots = { first: () => undefined, retry: async () => () => undefined };
const send = (u: Upstream, signal = new AbortController().signal) =>
  u.send(ENDPOINT, BODY, signal, noSlots, `${ENDPOINT} m`);

describe('Upstream with several base URLs', () => {
  let servers: Server[];
  let urls: string[];
  let upstream: Upstream;
  beforeEach(async () => {
    servers = [new Server(), new Server(), new Server()];
    urls = await Promise.all(servers.map((s) => s.listen()));
  });
  afterEach(async () => {
    await upstream.close();
    await Promise.all(servers.map((s) => s.close()));
  });

  it('takes turns among servers that answer alike', async () => {
    upstream = new Upstream({ baseUrl: urls, timeoutMs: 5000, maxRetries: 0 });
    for (let i = 0; i < 9; i++) assert.equal((await send(upstream)).kind, 'response');
    assert.deepEqual(
      servers.map((s) => s.received),
      [3, 3, 3],
    );
  });

  it('sends each request to the server with the fewest in flight', async () => {
    upstream = new Upstream({ baseUrl: urls.slice(0, 2), timeoutMs: 5000, maxRetries: 0 });
    servers[0].holding = true;
    const first = send(upstream);
    // The first went to server 0, which holds it: every request after it goes to server 1 while it is busy.
    while (servers[0].received === 0) await new Promise((r) => setTimeout(r, 5));
    for (let i = 0; i < 4; i++) await send(upstream);
    assert.deepEqual([servers[0].received, servers[1].received], [1, 4]);
    servers[0].release();
    assert.equal((await first).kind, 'response');
  });

  it('rests a server that refuses connections, so the requests after it go to one that answers', async () => {
    await servers[0].close();
    let refused = 0;
    upstream = new Upstream({
      baseUrl: urls.slice(0, 2),
      timeoutMs: 5000,
      maxRetries: 2,
      backoffMs: 1,
      onAttempt: ({ outcome }) => void (outcome === 'unreachable' && refused++),
    });
    for (let i = 0; i < 6; i++) assert.equal((await send(upstream)).kind, 'response');
    assert.equal(servers[1].received, 6, 'every request answered by the live server');
    // Taking turns alone would have tried the dead server for every other request.
    assert.equal(refused, 1, 'the dead server was tried once');
  });
});

describe('UpstreamPools', () => {
  let slow: Server;
  let fast: Server;
  let pools: UpstreamPools;
  beforeEach(async () => {
    slow = new Server();
    fast = new Server();
    const upstreams = {
      pools: {
        big: { urls: [await slow.listen()], models: ['big-model'], max_workers: 4 },
        small: { urls: [await fast.listen()], models: ['small-model'], max_workers: 4 },
      },
    };
    pools = new UpstreamPools(
      loadConfig({ UPSTREAMS: JSON.stringify(upstreams), CONCURRENCY_MODE: 'fixed', MAX_WORKERS: '64' }),
      2,
    );
  });
  afterEach(async () => {
    slow.release();
    await pools.close();
    await Promise.all([slow.close(), fast.close()]);
  });

  it("finds each model's pool, and splits each pool's max_workers between the host's processes", () => {
    assert.equal(pools.forModel('big-model')?.config.name, 'big');
    assert.equal(pools.forModel('small-model')?.config.name, 'small');
    assert.equal(pools.forModel('other'), undefined);
    assert.equal(pools.get('small')?.limiter.limit, 2, 'max_workers 4 over 2 processes');
  });

  it('a pool whose every slot waits on a slow server holds back no request of another pool', async () => {
    slow.holding = true;
    const big = pools.get('big')!;
    const small = pools.get('small')!;
    const signal = new AbortController().signal;
    // Two requests fill the big pool's slots and hang; a third waits for a slot.
    const bigRequests = [1, 2].map(async () => {
      const slot = await big.limiter.acquire('batch_big', signal);
      return big.upstream.send(ENDPOINT, BODY, signal, { ...noSlots, first: slot }, 'k');
    });
    const waiting = big.limiter.acquire('batch_big', signal);
    while (slow.received < 2) await new Promise((r) => setTimeout(r, 5));
    assert.equal(big.limiter.waiting, 1);

    for (let i = 0; i < 10; i++) {
      const slot = await small.limiter.acquire('batch_small', signal);
      const outcome = await small.upstream.send(ENDPOINT, BODY, signal, { ...noSlots, first: slot }, 'k');
      assert.equal(outcome.kind, 'response');
    }
    assert.equal(fast.received, 10);
    assert.equal(big.limiter.active, 2, 'the big pool still waits on its server');

    slow.release();
    await Promise.all(bigRequests);
    (await waiting)();
  });

  it('labels the in-flight and limit gauges and the attempt counter by pool', async () => {
    const small = pools.get('small')!;
    const slot = await small.limiter.acquire('b', new AbortController().signal);
    await small.upstream.send(ENDPOINT, BODY, new AbortController().signal, { ...noSlots, first: slot }, 'k');
    const text = await registry.metrics();
    assert.match(text, /^besh_upstream_concurrency_limit\{pool="big"\} 2$/m);
    assert.match(text, /^besh_upstream_concurrency_limit\{pool="small"\} 2$/m);
    assert.match(text, /^besh_upstream_in_flight\{pool="small"\} 0$/m);
    assert.match(
      text,
      /^besh_upstream_requests_total\{outcome="success",status_code="200",pool="small"\} \d+$/m,
    );
    assert.equal(small.counts.requests, 1);
  });
});
