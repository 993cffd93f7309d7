import { Client, Connection } from '@temporalio/client';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import type { Server } from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { createMetricsApp } from '../../api/app';
import { composeApi } from '../../main/api';
import { openServices } from '../../main/services';
import { projectRoot } from '../../src/paths';
import { createS3Client } from '../../src/storage/open-blob-stores';
import { S3BlobStore } from '../../src/storage/s3-blob-store';
import { s3Settings } from '../support/s3';
import { startStack, type Stack } from '../support/stack';

const run = promisify(execFile);

describe('Health and API keys', function () {
  this.timeout(60_000);
  let s: Stack;
  before(async () => {
    s = await startStack({ worker: false });
  });
  after(async () => s?.close());

  const health = async (base: string) => {
    const res = await fetch(`${base}/health`);
    return { status: res.status, body: (await res.json()) as Record<string, string> };
  };
  const base = () => s.baseURL.replace(/\/v1$/, '');
  const metricsStatus = async (origin: string, key: string) =>
    (await fetch(`${origin}/metrics`, { headers: { authorization: `Bearer ${key}` } })).status;
  const listen = async (app: ReturnType<typeof composeApi>) => {
    const server: Server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    return { server, base: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
  };

  it('answers 200 when the database, Temporal and the file store answer @smoke @store', async () => {
    assert.deepEqual(await health(s.baseURL.replace(/\/v1$/, '')), {
      status: 200,
      body: { status: 'ok', database: 'ok', temporal: 'ok', storage: 'ok' },
    });
  });

  it('creates, lists and revokes keys with the besh CLI; a revoked key stops at once', async () => {
    const besh = (...args: string[]) =>
      run(process.execPath, ['-r', 'ts-node/register', path.join(projectRoot, 'src/cli/besh.ts'), ...args], {
        cwd: projectRoot,
        env: { ...process.env, ...s.env },
      });
    const create = async (...args: string[]) => {
      const created = await besh('keys', 'create', ...args);
      const key = /(sk-besh-\S+)/.exec(created.stdout)?.[1];
      const id = /Created (key_[0-9a-f]+)/.exec(created.stdout)?.[1];
      assert.ok(key && id, created.stdout);
      return { key, id };
    };
    const { key, id } = await create('--name', 'ci-key');
    const client = new OpenAI({ apiKey: key, baseURL: s.baseURL, maxRetries: 0 });
    assert.deepEqual((await client.files.list()).data, [], 'a new key is a new, empty tenant');
    const operator = await create('--name', 'prometheus', '--operator');
    assert.equal(await metricsStatus(base(), key), 403);
    assert.equal(await metricsStatus(base(), operator.key), 200);

    const listed = await besh('keys', 'list');
    const row = (keyId: string, role: string, name: string) =>
      new RegExp(`${keyId}\\s+tenant_\\w+\\s+${role}\\s+sk-besh-\\S+\\s+\\S+Z\\s+active\\s+${name}`);
    assert.match(listed.stdout, row(id, 'tenant', 'ci-key'));
    assert.match(listed.stdout, row(operator.id, 'operator', 'prometheus'));
    assert.ok(!listed.stdout.includes(key), 'the list never shows a whole key');

    await besh('keys', 'revoke', id);
    const err = await client.files.list().catch((e: unknown) => e);
    assert.ok(err instanceof OpenAI.AuthenticationError);
    const bad = await besh('keys', 'revoke', 'key_nope').catch((e: { code: number; stderr: string }) => e);
    assert.equal((bad as { code: number }).code, 1, 'an unknown key is an error (1), not wrong usage (2)');
    assert.match((bad as { stderr: string }).stderr, /No active key key_nope/);
  });

  /** /metrics counts every tenant's batches: the API's and a worker's answer operator keys only. */
  const metricsByRole = async (origin: string) => {
    const { key: operator } = await s.keys.create({ role: 'operator' });
    const anon = await fetch(`${origin}/metrics`);
    assert.equal(anon.status, 401);
    assert.equal(((await anon.json()) as { error: { code: string } }).error.code, 'missing_api_key');
    const tenant = await fetch(`${origin}/metrics`, { headers: { authorization: `Bearer ${s.keyA}` } });
    assert.equal(tenant.status, 403);
    assert.equal(tenant.headers.get('x-should-retry'), 'false');
    assert.deepEqual(await tenant.json(), {
      error: {
        message:
          'This endpoint needs an operator key (besh keys create --operator); this key is a tenant key.',
        type: 'permission_error',
        param: null,
        code: 'permission_denied',
      },
    });
    const ok = await fetch(`${origin}/metrics`, { headers: { authorization: `Bearer ${operator}` } });
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /^besh_process_resident_memory_bytes \d+/m);
  };

  it('serves /metrics to operator keys only; a tenant key gets 403', () => metricsByRole(base()));

  it("serves a worker's /metrics with the same rule, and nothing else", async () => {
    const { server, base: origin } = await listen(createMetricsApp(s.keys, () => undefined));
    try {
      await metricsByRole(origin);
      const other = await fetch(`${origin}/v1/files`);
      assert.equal(other.status, 404);
      assert.equal(((await other.json()) as { error: { code: string } }).error.code, 'unknown_url');
    } finally {
      server.close();
    }
  });

  it('stores only a hash of each key', async () => {
    const rows = await s.keys.list();
    assert.ok(rows.length >= 2);
    for (const r of rows) {
      assert.match(r.keyHash, /^[0-9a-f]{64}$/);
      assert.notEqual(r.keyHash, s.keyA);
      assert.ok(!s.keyA.startsWith(r.keyHash));
    }
  });

  // Last: composing another API points the process-wide batch gauge (read by /metrics) at a database it closes.
  it('answers 503 naming the dependency that is down', async () => {
    const services = await openServices(s.config);
    const deadTemporal = new Client({ connection: Connection.lazy({ address: '127.0.0.1:1' }) });
    const { server, base } = await listen(
      composeApi(s.config, { ...services, temporal: deadTemporal, log: () => undefined }),
    );
    // An S3 store that cannot be reached (nothing listens on port 1).
    const noStore = new S3BlobStore(createS3Client(s3Settings('http://127.0.0.1:1', 'gone')), 'gone', '');
    const withoutStore = await listen(
      composeApi(s.config, { ...services, blobs: noStore, temporal: s.temporal, log: () => undefined }),
    );
    try {
      assert.deepEqual(await health(withoutStore.base), {
        status: 503,
        body: { status: 'unavailable', database: 'ok', temporal: 'ok', storage: 'down' },
      });
      assert.deepEqual(await health(base), {
        status: 503,
        body: { status: 'unavailable', database: 'ok', temporal: 'down', storage: 'ok' },
      });
      await services.db.destroy();
      assert.deepEqual(await health(base), {
        status: 503,
        body: { status: 'unavailable', database: 'down', temporal: 'down', storage: 'ok' },
      });
    } finally {
      server.close();
      withoutStore.server.close();
      noStore.client.destroy();
    }
  });
});
