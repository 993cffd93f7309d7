import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { setTimeout as pause } from 'node:timers/promises';
import { FileEntity } from '../../src/db/entities';
import { spoolDir } from '../../src/files/spool';
import { batchLines, toJsonl } from '../support/batches';
import { startStack, type Stack } from '../support/stack';

const HEADERS_S = 1;
const BODY_IDLE_S = 2;
const KEEP_ALIVE_S = 1;
/** Allowance past a configured timeout: Node looks for late headers every second, and the machine is shared. */
const SLACK_MS = 3000;

const BOUNDARY = 'besh-timeouts';

/** A multipart upload of `lines` as a batch file: the form's head, the file's bytes, and its tail. */
function form(lines: string[]) {
  const head = Buffer.from(
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n` +
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="slow.jsonl"\r\n` +
      'Content-Type: application/jsonl\r\n\r\n',
  );
  const file = lines.map((l) => Buffer.from(l));
  const tail = Buffer.from(`\r\n--${BOUNDARY}--\r\n`);
  const length = head.length + file.reduce((n, b) => n + b.length, 0) + tail.length;
  return { head, file, tail, length };
}

/** Resolves when `socket` closes; rejects if it is still open after `ms`. */
function closedWithin(socket: net.Socket, ms: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (socket.closed) return resolve();
    const timer = setTimeout(() => reject(new Error(`${what}: still open after ${ms} ms`)), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Polls `condition` until it holds; rejects after `ms`. */
async function until(condition: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await pause(50);
  }
}

describe('HTTP timeouts: a client holds a connection only while it makes progress', function () {
  this.timeout(60_000);
  let s: Stack;
  let port: number;
  before(async () => {
    s = await startStack({
      worker: false,
      env: {
        HTTP_HEADERS_TIMEOUT_SECONDS: String(HEADERS_S),
        HTTP_BODY_IDLE_TIMEOUT_SECONDS: String(BODY_IDLE_S),
        HTTP_KEEP_ALIVE_TIMEOUT_SECONDS: String(KEEP_ALIVE_S),
      },
    });
    port = Number(new URL(s.baseURL).port);
  });
  after(async () => s?.close());

  const files = () => s.db.getRepository(FileEntity).count();
  const spooled = () => (fs.existsSync(spoolDir(s.config)) ? fs.readdirSync(spoolDir(s.config)) : []);
  const connect = async () => {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const received: Buffer[] = [];
    socket.on('data', (b: Buffer) => received.push(b));
    socket.on('error', () => undefined);
    return { socket, received: () => Buffer.concat(received).toString() };
  };

  it('ends an upload that stops mid-body, removes its spool file and writes nothing', async () => {
    const before = await files();
    const { head, file } = form(batchLines(50).map((l) => toJsonl([l])));
    const { socket } = await connect();
    socket.write(
      `POST /v1/files HTTP/1.1\r\nHost: besh\r\nAuthorization: Bearer ${s.keyA}\r\n` +
        `Content-Type: multipart/form-data; boundary=${BOUNDARY}\r\n` +
        // Announces far more than it sends.
        `Content-Length: ${10 * 1024 * 1024}\r\n\r\n`,
    );
    socket.write(Buffer.concat([head, ...file.slice(0, 10)]));
    await until(() => spooled().length > 0, 10_000, 'the upload starts spooling');
    await closedWithin(socket, BODY_IDLE_S * 1000 + SLACK_MS, 'the stalled upload');
    await until(() => spooled().length === 0, 10_000, 'the spool file is removed');
    assert.equal(await files(), before, 'no file row');
  });

  it('accepts a slow upload that keeps sending for longer than the idle timeout', async () => {
    const before = await files();
    const lines = batchLines(12).map((l) => toJsonl([l]));
    const { head, file, tail, length } = form(lines);
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/v1/files',
          headers: {
            authorization: `Bearer ${s.keyA}`,
            'content-type': `multipart/form-data; boundary=${BOUNDARY}`,
            'content-length': length,
          },
        },
        (response) => {
          let body = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (body += chunk));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      (async () => {
        req.write(head);
        // 12 chunks half a second apart: 6 s in all, three times the idle timeout.
        for (const chunk of file) {
          await pause(500);
          req.write(chunk);
        }
        req.end(tail);
      })().catch(reject);
    });
    assert.equal(res.status, 200, res.body);
    const uploaded = JSON.parse(res.body) as { id: string; bytes: number };
    assert.equal(uploaded.bytes, Buffer.byteLength(lines.join('')));
    assert.equal(await files(), before + 1);
  });

  it('ends a connection whose headers do not arrive in time', async () => {
    const { socket, received } = await connect();
    socket.write('POST /v1/files HTTP/1.1\r\nHost: besh\r\n');
    await closedWithin(socket, HEADERS_S * 1000 + SLACK_MS, 'the unfinished headers');
    assert.match(received(), /^HTTP\/1\.1 408 /);
  });

  it('closes an idle keep-alive connection', async () => {
    const { socket, received } = await connect();
    socket.write('GET /health HTTP/1.1\r\nHost: besh\r\n\r\n');
    await until(() => /\r\n\r\n/.test(received()), 10_000, 'the health answer');
    assert.match(received(), /^HTTP\/1\.1 200 /);
    assert.match(received(), /connection: keep-alive/i);
    await closedWithin(socket, KEEP_ALIVE_S * 1000 + SLACK_MS, 'the idle keep-alive connection');
  });
});
