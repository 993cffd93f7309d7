import { Client, Connection } from '@temporalio/client';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import type { Server } from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { composeApi } from '../../main/api';
import { openServices } from '../../main/services';
import { projectRoot } from '../../src/paths';
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
  const listen = async (app: ReturnType<typeof composeApi>) => {
    const server: Server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    return { server, base: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
  };

  it('answers 200 when the database and Temporal answer @smoke', async () => {
    assert.deepEqual(await health(s.baseURL.replace(/\/v1$/, '')), {
      status: 200,
      body: { status: 'ok', database: 'ok', temporal: 'ok' },
    });
  });

  it('answers 503 naming the dependency that is down', async () => {
    const services = await openServices(s.config);
    const deadTemporal = new Client({ connection: Connection.lazy({ address: '127.0.0.1:1' }) });
    const { server, base } = await listen(
      composeApi(s.config, { ...services, temporal: deadTemporal, log: () => undefined }),
    );
    try {
      assert.deepEqual(await health(base), {
        status: 503,
        body: { status: 'unavailable', database: 'ok', temporal: 'down' },
      });
      await services.db.destroy();
      assert.deepEqual(await health(base), {
        status: 503,
        body: { status: 'unavailable', database: 'down', temporal: 'down' },
      });
    } finally {
      server.close();
    }
  });

  it('creates, lists and revokes keys with the besh CLI; a revoked key stops at once', async () => {
    const besh = (...args: string[]) =>
      run(process.execPath, ['-r', 'ts-node/register', path.join(projectRoot, 'src/cli/besh.ts'), ...args], {
        cwd: projectRoot,
        env: { ...process.env, ...s.env },
      });
    const created = await besh('keys', 'create', '--name', 'ci-key');
    const key = /(sk-besh-\S+)/.exec(created.stdout)?.[1];
    const id = /Created (key_[0-9a-f]+)/.exec(created.stdout)?.[1];
    assert.ok(key && id, created.stdout);
    const client = new OpenAI({ apiKey: key, baseURL: s.baseURL, maxRetries: 0 });
    assert.deepEqual((await client.files.list()).data, [], 'a new key is a new, empty tenant');

    const listed = await besh('keys', 'list');
    assert.match(
      listed.stdout,
      new RegExp(`${id}\\s+tenant_\\w+\\s+sk-besh-\\S+\\s+\\S+Z\\s+active\\s+ci-key`),
    );
    assert.ok(!listed.stdout.includes(key), 'the list never shows a whole key');

    await besh('keys', 'revoke', id);
    const err = await client.files.list().catch((e: unknown) => e);
    assert.ok(err instanceof OpenAI.AuthenticationError);
    const bad = await besh('keys', 'revoke', 'key_nope').catch((e: { code: number; stderr: string }) => e);
    assert.equal((bad as { code: number }).code, 1, 'an unknown key is an error (1), not wrong usage (2)');
    assert.match((bad as { stderr: string }).stderr, /No active key key_nope/);
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
});
