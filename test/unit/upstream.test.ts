import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Upstream, type UpstreamOptions } from '../../activities/upstream';

interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Answers the n-th request (0-based); leaving `res` unanswered makes the server hang. */
type Script = (n: number, res: http.ServerResponse) => void;

const json = (
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: http.OutgoingHttpHeaders = {},
) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
};

const ENDPOINT = '/v1/chat/completions';
const BODY = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
const KEY = `${ENDPOINT} m`;

describe('Upstream', () => {
  let server: http.Server;
  let baseUrl: string;
  let script: Script;
  let received: Received[];
  let upstream: Upstream | undefined;
  let slots: { acquired: number; released: number };

  before(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const n = received.length;
        received.push({
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString(),
        });
        script(n, res);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });

  beforeEach(() => {
    received = [];
    slots = { acquired: 0, released: 0 };
  });

  afterEach(async () => {
    server.closeAllConnections();
    await upstream?.close();
    upstream = undefined;
  });

  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  function make(opts: Partial<UpstreamOptions> = {}) {
    upstream = new Upstream({ baseUrl, timeoutMs: 5000, maxRetries: 3, backoffMs: 10, ...opts });
    return upstream;
  }

  /** A slot acquirer that counts what it hands out and what comes back. */
  const acquire = async () => {
    slots.acquired++;
    let done = false;
    return () => {
      if (!done) slots.released++;
      done = true;
    };
  };

  /** Like the chunk runner: the first attempt's slot is taken before the send, a retry's inside it. */
  const send = async (
    u: Upstream,
    signal: AbortSignal = new AbortController().signal,
    body: string | Buffer = BODY,
  ) => u.send(ENDPOINT, body, signal, { first: await acquire(), retry: acquire }, KEY);

  it('returns a 200 JSON response, sending only the body and its own headers', async () => {
    script = (_, res) => json(res, 200, { id: 'chatcmpl-1', ok: true }, { 'x-request-id': 'req_up_1' });
    const { latencyMs, ...outcome } = await send(make());

    assert.ok(latencyMs > 0, 'the latency is measured');
    assert.deepEqual(outcome, {
      kind: 'response',
      statusCode: 200,
      requestId: 'req_up_1',
      body: { id: 'chatcmpl-1', ok: true },
      json: '{"id":"chatcmpl-1","ok":true}',
    });
    assert.equal(received.length, 1);
    const [req] = received;
    assert.equal(req.method, 'POST');
    assert.equal(req.url, ENDPOINT);
    assert.equal(req.body, BODY);
    assert.equal(req.headers['content-type'], 'application/json');
    assert.equal(req.headers.authorization, undefined);
    const allowed = ['host', 'connection', 'content-type', 'content-length'];
    const extra = Object.keys(req.headers).filter((h) => !allowed.includes(h));
    assert.deepEqual(extra, []);
    assert.deepEqual(slots, { acquired: 1, released: 1 });
  });

  it('forwards a body given as bytes exactly as they are', async () => {
    script = (_, res) => json(res, 200, {});
    // Not what JSON.stringify would make of it: spaces, an escape, a number it would round.
    const bytes = Buffer.from(
      '{ "model": "m", "prompt": "caf\\u00e9 \u00e9", "seed": 12345678901234567890 }',
    );
    await send(make(), undefined, bytes);
    assert.equal(received[0].body, bytes.toString());
    assert.equal(received[0].headers['content-length'], String(bytes.length));
  });

  it('tells onAttempt the request class it was given', async () => {
    script = (n, res) => (n === 0 ? json(res, 503, {}) : json(res, 200, {}));
    const attempts: unknown[] = [];
    await send(
      make({ onAttempt: ({ outcome, statusCode, key }) => attempts.push({ outcome, statusCode, key }) }),
    );
    assert.deepEqual(attempts, [
      { outcome: 'http_error', statusCode: 503, key: KEY },
      { outcome: 'success', statusCode: 200, key: KEY },
    ]);
  });

  it('keeps the body text as it came when it is one line, trimmed of the whitespace around it', async () => {
    const text = '{"n":1.0,"big":12345678901234567890,"s":"a\\u00e9\\n\\"","usage":{"prompt_tokens":3}}';
    script = (_, res) => json(res, 200, ` \t${text}\r\n`);
    const outcome = await send(make());
    assert.equal(outcome.kind === 'response' && outcome.json, text);
  });

  it('serialises a pretty-printed body again: a result line is one line', async () => {
    const body = { id: 'x', choices: [{ text: 'two\nlines' }], usage: { prompt_tokens: 3 } };
    script = (_, res) => json(res, 200, JSON.stringify(body, null, 2));
    const outcome = await send(make());
    assert.equal(outcome.kind === 'response' && outcome.json, JSON.stringify(body));
    assert.deepEqual(outcome.kind === 'response' && outcome.body, body);
  });

  it('drops a UTF-8 byte-order mark before the body, as undici text() did', async () => {
    script = (_, res) => json(res, 200, '\ufeff{"ok":true}');
    const outcome = await send(make());
    assert.deepEqual(outcome.kind === 'response' && [outcome.body, outcome.json], [
      { ok: true },
      '{"ok":true}',
    ]);
  });

  it('makes up a request id when the server sends none', async () => {
    script = (_, res) => json(res, 200, {});
    const outcome = await send(make());
    assert.equal(outcome.kind, 'response');
    assert.match(outcome.kind === 'response' ? outcome.requestId : '', /^req_[0-9a-f]+$/);
  });

  it('sends the API key as a Bearer token', async () => {
    script = (_, res) => json(res, 200, {});
    await send(make({ apiKey: 'sk-secret' }));
    assert.equal(received[0].headers.authorization, 'Bearer sk-secret');
  });

  it('returns a 400 as final after one request', async () => {
    script = (_, res) => json(res, 400, { error: { message: 'bad' } });
    const outcome = await send(make());
    assert.equal(outcome.kind, 'response');
    assert.deepEqual(outcome.kind === 'response' && [outcome.statusCode, outcome.body], [
      400,
      { error: { message: 'bad' } },
    ]);
    assert.equal(received.length, 1);
    assert.deepEqual(slots, { acquired: 1, released: 1 });
  });

  it('retries a 503 into a success, one slot per attempt', async () => {
    script = (n, res) => (n < 2 ? json(res, 503, 'overloaded') : json(res, 200, { n }));
    const outcome = await send(make());
    assert.equal(outcome.kind, 'response');
    assert.deepEqual(outcome.kind === 'response' && [outcome.statusCode, outcome.body], [200, { n: 2 }]);
    assert.equal(received.length, 3);
    assert.deepEqual(slots, { acquired: 3, released: 3 });
  });

  it('returns the last retryable status once retries run out, wrapping a non-JSON body', async () => {
    script = (_, res) => json(res, 502, 'bad gateway');
    const outcome = await send(make({ maxRetries: 2 }));
    assert.equal(outcome.kind, 'response');
    assert.deepEqual(outcome.kind === 'response' && [outcome.statusCode, outcome.body, outcome.json], [
      502,
      { error: { message: 'bad gateway' } },
      '{"error":{"message":"bad gateway"}}',
    ]);
    assert.equal(received.length, 3);
    assert.deepEqual(slots, { acquired: 3, released: 3 });
  });

  /** Sends with a sleep that records each wait instead of waiting. */
  async function sendRecordingWaits(retryAfter: string) {
    script = (n, res) => (n === 0 ? json(res, 429, {}, { 'retry-after': retryAfter }) : json(res, 200, {}));
    const waits: number[] = [];
    const outcome = await send(make({ sleep: async (ms) => waits.push(ms) }));
    assert.equal(outcome.kind === 'response' && outcome.statusCode, 200);
    assert.equal(received.length, 2);
    return waits;
  }

  it('waits for Retry-After before retrying a 429', async () => {
    // The backoff (10 ms) is shorter: the wait is the server's.
    assert.deepEqual(await sendRecordingWaits('2'), [2000]);
  });

  it('waits at most five minutes when Retry-After asks for hours', async () => {
    assert.deepEqual(await sendRecordingWaits('86400'), [5 * 60_000]);
  });

  it('wraps the first 2000 characters of a non-JSON error body, newlines and all, on one line', async () => {
    const text = `<html>\n${'é'.repeat(2500)}\n</html>`;
    script = (_, res) => json(res, 400, text);
    const outcome = await send(make());
    const wrapped = { error: { message: text.slice(0, 2000) } };
    assert.deepEqual(outcome.kind === 'response' && [outcome.body, outcome.json], [
      wrapped,
      JSON.stringify(wrapped),
    ]);
  });

  it('retries a malformed 200 body, then reports invalid_upstream_response', async () => {
    script = (_, res) => json(res, 200, '{"truncated":');
    const outcome = await send(make({ maxRetries: 2 }));
    assert.equal(outcome.kind, 'error');
    assert.equal(outcome.kind === 'error' && outcome.code, 'invalid_upstream_response');
    assert.equal(received.length, 3);
    assert.deepEqual(slots, { acquired: 3, released: 3 });
  });

  it('reports request_timeout after retries when the server never answers', async () => {
    script = () => undefined;
    const outcome = await send(make({ timeoutMs: 100, maxRetries: 1 }));
    assert.equal(outcome.kind === 'error' && outcome.code, 'request_timeout');
    assert.equal(received.length, 2);
    assert.deepEqual(slots, { acquired: 2, released: 2 });
  });

  it('reports upstream_unreachable when nothing listens', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));

    const outcome = await send(make({ baseUrl: `http://127.0.0.1:${port}/v1`, maxRetries: 1 }));
    assert.equal(outcome.kind === 'error' && outcome.code, 'upstream_unreachable');
    assert.deepEqual(slots, { acquired: 2, released: 2 });
  });

  // In the next two tests only the abort can end the send: the request timeout and the Retry-After are longer
  // than the test's own timeout.
  it('rejects with the reason when aborted during a request', async () => {
    const controller = new AbortController();
    const reason = new Error('cancelled');
    script = () => controller.abort(reason); // the request has arrived and is never answered
    await assert.rejects(send(make({ timeoutMs: 10 * 60_000 }), controller.signal), (err) => err === reason);
    assert.equal(received.length, 1);
    assert.deepEqual(slots, { acquired: 1, released: 1 });
  });

  it('rejects when aborted while waiting to retry', async () => {
    script = (_, res) => json(res, 503, {}, { 'retry-after': '300' });
    const controller = new AbortController();
    // onAttempt runs just before the wait starts; the abort lands once the wait has begun.
    const upstream = make({ onAttempt: () => setImmediate(() => controller.abort(new Error('cancelled'))) });
    await assert.rejects(send(upstream, controller.signal), { name: 'AbortError' });
    assert.equal(received.length, 1);
    assert.deepEqual(slots, { acquired: 1, released: 1 });
  });
});
