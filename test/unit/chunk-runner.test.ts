import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DataSource } from 'typeorm';
import { BatchStops } from '../../activities/batch-stops';
import { readSegments, segmentsByChunk, type PartKind } from '../../src/results/chunk-segments';
import type { ActivityDeps } from '../../activities/deps';
import { FairLimiter } from '../../activities/fair-limiter';
import { processChunkActivity } from '../../activities/process-chunk';
import { errorLine, responseLine } from '../../src/results/result-lines';
import { Upstream } from '../../activities/upstream';
import type { Pool } from '../../activities/upstream-pools';
import { loadConfig } from '../../src/config';
import type { ProcessChunkInput } from '../../src/contract/batch-workflow';
import { openDatabase } from '../../src/db/data-source';
import { BatchEntity, ChunkProgressEntity } from '../../src/db/entities';
import { LocalBlobStore } from '../../src/storage/local-blob-store';

const ENDPOINT = '/v1/chat/completions';
/** What the model server charges per answer, and what the lines already in a part file say they cost. */
const USAGE = { prompt_tokens: 3, completion_tokens: 5 };
const SAVED_USAGE = { prompt_tokens: 2, completion_tokens: 7 };

const idOf = (i: number) => `req-${i}`;

/** Stands in for the model server: records each request's custom_id (its prompt), answers at once or holds it. */
class ModelServer {
  readonly received: string[] = [];
  readonly held: http.ServerResponse[] = [];
  /** Requests whose client went away before the answer. */
  aborted = 0;
  holding = false;
  private readonly server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(parts).toString()) as { messages: Array<{ content: string }> };
      this.received.push(body.messages[0].content);
      res.on('close', () => {
        if (!res.writableFinished) this.aborted++;
      });
      if (this.holding) this.held.push(res);
      else ModelServer.answer(res, 200);
    });
  });

  static answer(res: http.ServerResponse, status: number): void {
    const body =
      status === 200 ? { object: 'chat.completion', usage: USAGE } : { error: { message: 'busy' } };
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** Waits until `condition` holds, failing after a bound far above what it takes. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe('processChunk (the chunk runner)', () => {
  let dir: string;
  let db: DataSource;
  let blobs: LocalBlobStore;
  let parts: LocalBlobStore;
  let model: ModelServer;
  let upstream: Upstream;
  let limiter: FairLimiter;
  let draining: AbortController;
  let stops: BatchStops;
  let batchId: string;
  let batches = 0;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'besh-chunk-runner-'));
    db = await openDatabase({ databaseUrl: undefined, sqlitePath: path.join(dir, 'besh.db') });
    blobs = new LocalBlobStore(path.join(dir, 'blobs'));
    parts = new LocalBlobStore(path.join(dir, 'parts'));
  });

  after(async () => {
    await db.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    model = new ModelServer();
    upstream = new Upstream({
      baseUrl: await model.listen(),
      timeoutMs: 10_000,
      maxRetries: 3,
      backoffMs: 1,
    });
    draining = new AbortController();
    stops = new BatchStops(db, 10);
    batchId = `batch_${++batches}`;
  });

  afterEach(async () => {
    await model.close();
    await upstream.close();
    stops.close();
  });

  /** Stores an input file of `n` requests and returns the chunk that covers all of it. */
  async function chunkOf(n: number): Promise<ProcessChunkInput> {
    const lines = Array.from({ length: n }, (_, i) =>
      JSON.stringify({
        custom_id: idOf(i),
        method: 'POST',
        url: ENDPOINT,
        body: { model: 'm', messages: [{ role: 'user', content: idOf(i) }] },
      }),
    );
    const text = lines.join('\n') + '\n';
    const inputFileId = `file-${batchId}`;
    await blobs.put(inputFileId, Readable.from([Buffer.from(text)]));
    return {
      batchId,
      owner: 'owner-1',
      inputFileId,
      endpoint: ENDPOINT,
      chunk: { index: 0, start: 0, end: Buffer.byteLength(text), lines: n },
    };
  }

  function run(input: ProcessChunkInput, env: MockActivityEnvironment, capacity = 4) {
    limiter = new FairLimiter(capacity);
    const pool = { limiter, upstream } as Pool;
    const deps: ActivityDeps = {
      config: loadConfig({}),
      db,
      blobs,
      parts,
      // One pool serving every model, as VLLM_BASE_URL alone configures.
      pools: { forModel: () => pool, get: () => pool },
      draining: draining.signal,
      stops,
    };
    return env.run(processChunkActivity(deps), input);
  }

  /** Every custom_id stored in the chunk's `kind` segments, repeats included; each line must be whole JSON. */
  async function idsIn(kind: PartKind): Promise<string[]> {
    const ids: string[] = [];
    for await (const { key } of parts.list(`${batchId}.000000.`)) {
      if (!key.includes(`.${kind}.`)) continue;
      const text = fs.readFileSync(path.join(dir, 'parts', key), 'utf8');
      assert.ok(text.endsWith('\n'), `${key} ends in a whole line`);
      for (const l of text.split('\n').filter(Boolean))
        ids.push((JSON.parse(l) as { custom_id: string }).custom_id);
    }
    return ids;
  }

  /** Stores a segment of chunk 0 as an earlier attempt (told apart by `tag`) would have. */
  async function writeSegment(seq: number, kind: PartKind, text: string, tag = 'a0a0a0'): Promise<void> {
    await parts.put(
      `${batchId}.000000.${String(seq).padStart(8, '0')}.${kind}.${tag}`,
      Readable.from([text]),
    );
  }

  const answeredLine = (i: number) =>
    responseLine(batchId, idOf(i), 200, `req_up_${i}`, JSON.stringify({ usage: SAVED_USAGE })) + '\n';
  const failedLine = (i: number) =>
    JSON.stringify(errorLine(batchId, idOf(i), 'request_timeout', 'too slow')) + '\n';

  const sorted = (ids: string[]) => [...ids].sort();

  it('resumes: sends only the requests its segments do not answer, and counts every line once', async () => {
    const input = await chunkOf(12);
    const answered = [0, 3, 6, 9];
    const failed = [1, 7];
    await writeSegment(0, 'out', answered.map(answeredLine).join(''));
    await writeSegment(0, 'err', failed.map(failedLine).join(''));
    const env = new MockActivityEnvironment();
    const heartbeats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => heartbeats.push(d));

    const result = await run(input, env);

    const unanswered = [2, 4, 5, 8, 10, 11].map(idOf);
    assert.deepEqual(sorted(model.received), sorted(unanswered));
    assert.deepEqual(result, { completed: 10, failed: 2 });
    assert.deepEqual(sorted(await idsIn('out')), sorted([...answered.map(idOf), ...unanswered]));
    assert.deepEqual(await idsIn('err'), failed.map(idOf));
    const row = await db.getRepository(ChunkProgressEntity).findOneByOrFail({ batchId, chunkIndex: 0 });
    assert.equal(row.completed, 10);
    assert.equal(row.failed, 2);
    // Usage comes from the lines already stored plus the new answers, each counted once.
    assert.equal(row.inputTokens, 4 * SAVED_USAGE.prompt_tokens + 6 * USAGE.prompt_tokens);
    assert.equal(row.outputTokens, 4 * SAVED_USAGE.completion_tokens + 6 * USAGE.completion_tokens);
    assert.equal(row.latencyCount, 6);
    // The segments are the checkpoint: heartbeats carry nothing.
    assert.ok(heartbeats.length >= 1);
    assert.ok(heartbeats.every((d) => d === undefined));
  });

  it('counts a request that two overlapping attempts both stored once, and writes after their segments', async () => {
    const input = await chunkOf(5);
    // A worker cut off from Temporal kept running beside the attempt that replaced it: both answered req-1.
    await writeSegment(0, 'out', answeredLine(0) + answeredLine(1));
    await writeSegment(1, 'out', answeredLine(1) + answeredLine(2), 'b1b1b1');

    const result = await run(input, new MockActivityEnvironment());

    assert.deepEqual(sorted(model.received), [3, 4].map(idOf));
    assert.deepEqual(result, { completed: 5, failed: 0 });
    const keys: string[] = [];
    for await (const { key } of parts.list(`${batchId}.`)) keys.push(key);
    assert.equal(keys.length, 3);
    assert.match(keys[2], /\.00000002\.out\.[0-9a-f]{6}$/, 'the new segment comes after both');
    const read: string[] = [];
    for await (const { chunk, segments } of segmentsByChunk(parts, batchId)) {
      assert.equal(chunk, 0);
      for await (const { customId } of readSegments(parts, segments)) read.push(customId);
    }
    assert.deepEqual(read, [0, 1, 2, 3, 4].map(idOf), 'each request read once, in write order');
  });

  it('a cancel aborts the requests in flight, starts no other, and rejects as cancelled', async () => {
    const input = await chunkOf(10);
    model.holding = true;
    const env = new MockActivityEnvironment();
    const running = run(input, env, 3);
    await until(() => model.received.length === 3, 'three requests in flight');

    env.cancel();

    await assert.rejects(running, CancelledFailure);
    await until(() => model.aborted === 3, 'the model server to see three clients go away');
    assert.equal(model.received.length, 3);
    assert.equal(limiter.active, 0);
    assert.deepEqual([...(await idsIn('out')), ...(await idsIn('err'))], []);
  });

  it('a batch halted in the database aborts the requests in flight before Temporal cancels the chunk', async () => {
    const input = await chunkOf(10);
    await db.getRepository(BatchEntity).insert({
      id: batchId,
      owner: 'owner-1',
      endpoint: ENDPOINT,
      inputFileId: input.inputFileId,
      completionWindow: '24h',
      status: 'in_progress',
      createdAt: 1,
    });
    model.holding = true;
    const env = new MockActivityEnvironment();
    const running = run(input, env, 3);
    await until(() => model.received.length === 3, 'three requests in flight');

    await db.getRepository(BatchEntity).update({ id: batchId }, { status: 'cancelling' });

    await until(() => model.aborted === 3, 'the model server to see three clients go away');
    assert.equal(model.received.length, 3, 'no request started after the batch halted');
    assert.equal(limiter.active, 0);
    env.cancel(); // Temporal's cancellation, fetched by a later heartbeat
    await assert.rejects(running, CancelledFailure);
    assert.deepEqual(
      [...(await idsIn('out')), ...(await idsIn('err'))],
      [],
      'an aborted request is not an answer',
    );
  });

  it('a drain lets the requests in flight finish, retries included, and hands the rest over', async () => {
    const input = await chunkOf(10);
    model.holding = true;
    const running = run(input, new MockActivityEnvironment(), 3);
    await until(() => model.received.length === 3, 'three requests in flight');
    const inFlight = [...model.received];

    draining.abort();
    // The first answer is a 503: its retry must still get a slot although the worker drains.
    model.holding = false;
    model.held.forEach((res, i) => ModelServer.answer(res, i === 0 ? 503 : 200));

    await assert.rejects(
      running,
      (err) => err instanceof ApplicationFailure && err.type === 'WorkerDraining',
    );
    assert.deepEqual(model.received, [...inFlight, inFlight[0]]);
    assert.deepEqual(sorted(await idsIn('out')), sorted(inFlight));
    assert.deepEqual(await idsIn('err'), []);
    const row = await db.getRepository(ChunkProgressEntity).findOneByOrFail({ batchId, chunkIndex: 0 });
    assert.equal(row.completed, 3);
  });
});
