import { MockActivityEnvironment } from '@temporalio/testing';
import Router from '@koa/router';
import Koa from 'koa';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { deleteExpiredFilesActivity } from '../../activities/cleanup';
import type { ActivityDeps } from '../../activities/deps';
import type { AuthState } from '../../api/auth';
import { errorHandler } from '../../api/errors';
import { idempotently } from '../../api/idempotency';
import type { Principal } from '../../src/auth/api-keys';
import { loadConfig } from '../../src/config';
import { IdempotencyKeyEntity } from '../../src/db/entities';
import { Refused } from '../../src/services/errors';
import {
  checkIdempotencyKey,
  digestJson,
  digestUpload,
  IDEMPOTENCY_TTL_SECONDS,
  IdempotencyService,
  KeyInFlight,
} from '../../src/services/idempotency';
import { openServiceFixture, type ServiceFixture } from '../support/service-fixture';

const A = 'tenant_a';
const B = 'tenant_b';
const KEY = 'retry-me-1';

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** A create that counts its runs and answers a new object each time, or waits for `gate` when given one. */
function creator(gate?: Promise<void>) {
  const c = {
    runs: 0,
    started: deferred(),
    create: async () => {
      c.runs++;
      c.started.resolve();
      if (gate) await gate;
      return { id: `obj_${c.runs}`, object: 'thing' };
    },
  };
  return c;
}

const reused = (err: unknown) => err instanceof Refused && err.code === 'idempotency_key_reused';

describe('IdempotencyService', () => {
  let f: ServiceFixture;
  beforeEach(async () => {
    f = await openServiceFixture();
  });
  afterEach(async () => f.close());

  const service = (waitMs = 10_000, pause: (ms: number) => Promise<unknown> = sleep) =>
    new IdempotencyService(f.db, { waitMs, pause });
  const rows = () => f.db.getRepository(IdempotencyKeyEntity).find();
  /** Moves the key's row back in time, as if it were created `seconds` ago. */
  const age = (owner: string, key: string, seconds: number) =>
    f.db
      .getRepository(IdempotencyKeyEntity)
      .update({ owner, key }, { createdAt: Math.floor(Date.now() / 1000) - seconds });

  it('runs the first request and replays its answer to the next with the same key', async () => {
    const svc = service();
    const c = creator();
    const first = await svc.once(A, KEY, 'fp1', c.create);
    const second = await svc.once(A, KEY, 'fp1', c.create);
    assert.deepEqual(first, { response: { id: 'obj_1', object: 'thing' }, replayed: false });
    assert.deepEqual(second, { response: { id: 'obj_1', object: 'thing' }, replayed: true });
    assert.equal(c.runs, 1);
    assert.deepEqual(
      (await rows()).map((r) => [r.owner, r.key, r.state]),
      [[A, KEY, 'done']],
    );
  });

  it('makes a request that arrives while the first runs wait for its answer instead of running', async () => {
    const gate = deferred();
    const c = creator(gate.promise);
    const first = service().once(A, KEY, 'fp1', c.create);
    await c.started.promise;
    // The first finishes only once the second has found the key in flight and started to wait.
    let pauses = 0;
    const second = await service(10_000, (ms) => {
      pauses++;
      gate.resolve();
      return sleep(ms);
    }).once(A, KEY, 'fp1', c.create);
    assert.deepEqual(await first, { response: { id: 'obj_1', object: 'thing' }, replayed: false });
    assert.deepEqual(second, { response: { id: 'obj_1', object: 'thing' }, replayed: true });
    assert.ok(pauses >= 1);
    assert.equal(c.runs, 1);
  });

  it('answers KeyInFlight past the wait, without running; the first answer is replayed once it is done', async () => {
    const gate = deferred();
    const c = creator(gate.promise);
    const first = service().once(A, KEY, 'fp1', c.create);
    await c.started.promise;
    await assert.rejects(service(0).once(A, KEY, 'fp1', c.create), KeyInFlight);
    gate.resolve();
    await first;
    assert.deepEqual(await service(0).once(A, KEY, 'fp1', c.create), {
      response: { id: 'obj_1', object: 'thing' },
      replayed: true,
    });
    assert.equal(c.runs, 1);
  });

  it('refuses the key with another request, while the first runs and once it is done', async () => {
    const gate = deferred();
    const c = creator(gate.promise);
    const first = service().once(A, KEY, 'fp1', c.create);
    await c.started.promise;
    await assert.rejects(service().once(A, KEY, 'fp2', c.create), reused);
    gate.resolve();
    await first;
    await assert.rejects(service().once(A, KEY, 'fp2', c.create), reused);
    assert.equal(c.runs, 1);
  });

  it('releases the key of a request that failed, so that a corrected retry runs', async () => {
    const svc = service();
    await assert.rejects(
      svc.once(A, KEY, 'bad', async () => {
        throw new Refused('not_found', 'No such File object: file-x', 'not_found', 'id');
      }),
      /No such File/,
    );
    assert.deepEqual(await rows(), []);
    const c = creator();
    assert.deepEqual(await svc.once(A, KEY, 'good', c.create), {
      response: { id: 'obj_1', object: 'thing' },
      replayed: false,
    });
  });

  it('keeps the keys of each tenant apart', async () => {
    const c = creator();
    assert.equal((await service().once(A, KEY, 'fp1', c.create)).replayed, false);
    assert.equal((await service().once(B, KEY, 'fp2', c.create)).replayed, false);
    assert.equal(c.runs, 2);
  });

  it('lets a key go after 24 hours, or 10 minutes in flight (its request died); not before', async () => {
    const c = creator();
    await service().once(A, 'done-key', 'fp1', c.create);
    await age(A, 'done-key', IDEMPOTENCY_TTL_SECONDS - 60);
    assert.equal((await service().once(A, 'done-key', 'fp1', c.create)).replayed, true);
    await age(A, 'done-key', IDEMPOTENCY_TTL_SECONDS);
    assert.deepEqual(await service().once(A, 'done-key', 'fp2', c.create), {
      response: { id: 'obj_2', object: 'thing' },
      replayed: false,
    });

    // A request that died in flight: its row stays `in_flight`.
    const never = creator(new Promise(() => undefined));
    void service().once(A, 'dead-key', 'fp1', never.create);
    await never.started.promise;
    await age(A, 'dead-key', 9 * 60);
    await assert.rejects(service(0).once(A, 'dead-key', 'fp1', c.create), KeyInFlight);
    await age(A, 'dead-key', 10 * 60);
    assert.equal((await service(0).once(A, 'dead-key', 'fp1', c.create)).replayed, false);
    assert.equal(c.runs, 3);
  });

  it("is swept by the cleanup workflow's deleteExpiredFiles activity past its 24 hours, not before", async () => {
    const c = creator();
    for (const key of ['old', 'young']) await service().once(A, key, 'fp', c.create);
    await age(A, 'old', IDEMPOTENCY_TTL_SECONDS);
    await age(A, 'young', IDEMPOTENCY_TTL_SECONDS - 60);
    // The activity reads only the database, the blobs and the configuration.
    const deps: Pick<ActivityDeps, 'db' | 'blobs' | 'config'> = {
      db: f.db,
      blobs: f.blobs,
      config: loadConfig({}),
    };
    await new MockActivityEnvironment().run(deleteExpiredFilesActivity(deps as ActivityDeps));
    assert.deepEqual(
      (await rows()).map((r) => r.key),
      ['young'],
    );
  });
});

describe('Idempotency keys and request digests', () => {
  it('takes 1 to 255 printable ASCII characters as a key', () => {
    for (const ok of [
      'a',
      ' x~',
      'k'.repeat(255),
      'stainless-node-retry-7c1f0c1e-2b6d-4d7e-9c55-0d0e8a3f5b11',
    ]) {
      assert.equal(checkIdempotencyKey(ok), ok);
    }
    for (const bad of ['', 'k'.repeat(256), 'clé', 'tab\there', 'nul\0', '\x7f']) {
      assert.throws(
        () => checkIdempotencyKey(bad),
        (e: unknown) => e instanceof Refused && e.kind === 'invalid' && e.code === 'invalid_idempotency_key',
      );
    }
  });

  it('hashes a JSON body the same whatever the order of its keys, and differently for another body', () => {
    const body = { input_file_id: 'file-1', endpoint: '/v1/embeddings', metadata: { a: '1', b: '2' } };
    const reordered = { metadata: { b: '2', a: '1' }, endpoint: '/v1/embeddings', input_file_id: 'file-1' };
    assert.equal(digestJson(body), digestJson(reordered));
    assert.notEqual(digestJson(body), digestJson({ ...body, metadata: { a: '1', b: '3' } }));
    assert.notEqual(digestJson([1, 2]), digestJson([2, 1]));
  });

  it('hashes an upload from its bytes, name and fields', async () => {
    const f = await openServiceFixture();
    try {
      const file = { path: f.spool('{"a":1}\n'), filename: 'in.jsonl' };
      const fields = { purpose: 'batch', 'expires_after[anchor]': 'created_at' };
      const digest = await digestUpload(file, fields);
      assert.equal(
        await digestUpload({ ...file }, { 'expires_after[anchor]': 'created_at', purpose: 'batch' }),
        digest,
      );
      assert.notEqual(
        await digestUpload({ path: f.spool('{"a":2}\n'), filename: 'in.jsonl' }, fields),
        digest,
      );
      assert.notEqual(await digestUpload({ ...file, filename: 'other.jsonl' }, fields), digest);
      assert.notEqual(await digestUpload(file, { ...fields, purpose: 'user_data' }), digest);
    } finally {
      await f.close();
    }
  });
});

describe('idempotently: the answers of a creating route under Idempotency-Key', () => {
  let f: ServiceFixture;
  let server: Server;
  let url: string;
  const gate = deferred();
  const c = creator(gate.promise);
  before(async () => {
    f = await openServiceFixture();
    // No wait: a request finding its key in flight answers at once.
    const idempotency = new IdempotencyService(f.db, { waitMs: 0, pause: sleep });
    const router = new Router<AuthState>();
    router.post('/things', async (ctx) => {
      ctx.state.principal = { keyId: 'key_a', tenantId: A } as Principal;
      await idempotently(ctx, idempotency)(() => 'digest', c.create);
    });
    const app = new Koa<AuthState>();
    app.use(errorHandler(() => undefined));
    app.use(router.routes());
    server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/things`;
  });
  after(async () => {
    server.close();
    server.closeAllConnections();
    await f.close();
  });
  const post = (key?: string) =>
    fetch(url, { method: 'POST', headers: key === undefined ? {} : { 'Idempotency-Key': key } });

  it('answers 409 to be retried while the first request runs, then replays its object', async () => {
    const first = post('k1');
    await c.started.promise;
    const busy = await post('k1');
    assert.equal(busy.status, 409);
    assert.equal(busy.headers.get('x-should-retry'), 'true');
    assert.equal(busy.headers.get('retry-after'), '1');
    assert.deepEqual(await busy.json(), {
      error: {
        message: 'A request with this Idempotency-Key is still being processed; retry in a moment.',
        type: 'invalid_request_error',
        param: null,
        code: 'idempotency_key_in_use',
      },
    });
    gate.resolve();
    const done = await first;
    assert.equal(done.status, 200);
    assert.equal(done.headers.get('idempotent-replayed'), null);
    const replay = await post('k1');
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(await replay.json(), await done.json());
    assert.equal(c.runs, 1);
  });

  it('refuses a malformed key with a 400 not to be retried, and runs every request sent without a key', async () => {
    const bad = await post('k'.repeat(256));
    assert.equal(bad.status, 400);
    assert.equal(bad.headers.get('x-should-retry'), 'false');
    assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'invalid_idempotency_key');
    const runs = c.runs;
    for (let i = 0; i < 2; i++) assert.equal((await post()).status, 200);
    assert.equal(c.runs, runs + 2);
  });
});
