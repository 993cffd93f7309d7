import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DataSource } from 'typeorm';
import { ensureApiKey } from '../../main/services';
import { ApiKeys } from '../../src/auth/api-keys';
import { loadConfig } from '../../src/config';
import { openDatabase } from '../../src/db/data-source';
import { Init1764201600000 } from '../../src/db/migrations/1764201600000-Init';
import { Stats1764201600001 } from '../../src/db/migrations/1764201600001-Stats';

describe('API key roles', () => {
  let dir: string;
  let db: DataSource;
  let keys: ApiKeys;
  const config = (env: Record<string, string> = {}) => loadConfig({ DATA_DIR: dir, ...env });
  const roleOf = async (key: string) => (await keys.authenticate(key))?.role;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'besh-keys-'));
    db = await openDatabase(config());
    keys = new ApiKeys(db);
  });
  afterEach(async () => {
    await db.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('makes the key of a first start an operator key, saved for the operator', async () => {
    await ensureApiKey(config(), keys);
    const key = fs.readFileSync(path.join(dir, 'api-key.txt'), 'utf8').trim();
    assert.equal(await roleOf(key), 'operator');
    assert.equal(await keys.count(), 1);
  });

  it('seeds BESH_API_KEYS as tenant keys and BESH_OPERATOR_KEYS as operator keys, and makes no other', async () => {
    const tenant = 'tenant-key-aaaaaaaaaaaa';
    const operator = 'operator-key-bbbbbbbbbbbb';
    await ensureApiKey(config({ BESH_API_KEYS: tenant, BESH_OPERATOR_KEYS: operator }), keys);
    assert.equal(await roleOf(tenant), 'tenant');
    assert.equal(await roleOf(operator), 'operator');
    assert.equal(await keys.count(), 2);
    assert.ok(!fs.existsSync(path.join(dir, 'api-key.txt')));
  });

  it('gives a seeded key the role of the list it is in now, keeping its tenant', async () => {
    const key = 'moving-key-cccccccccccc';
    await ensureApiKey(config({ BESH_OPERATOR_KEYS: key }), keys);
    const before = await keys.authenticate(key);
    await ensureApiKey(config({ BESH_API_KEYS: key }), keys);
    assert.deepEqual(await keys.authenticate(key), { ...before, role: 'tenant' });
  });

  it('creates tenant keys unless asked for an operator key', async () => {
    assert.equal(await roleOf((await keys.create()).key), 'tenant');
    assert.equal(await roleOf((await keys.create({ role: 'operator' })).key), 'operator');
  });
});

describe('the KeyRoles migration', () => {
  it('makes existing keys tenant keys, except the one a first start created', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'besh-migrate-'));
    const sqlitePath = path.join(dir, 'besh.sqlite');
    try {
      // A database as the previous release left it: no role column.
      const old = new DataSource({
        type: 'better-sqlite3',
        database: sqlitePath,
        migrations: [Init1764201600000, Stats1764201600001],
      });
      await old.initialize();
      await old.runMigrations();
      const insert = `INSERT INTO api_keys (id, tenant_id, name, key_hash, key_prefix, created_at)
        VALUES (?, 't', ?, ?, 'sk', 0)`;
      await old.query(insert, ['key_first', 'first start', 'a'.repeat(64)]);
      await old.query(insert, ['key_alice', 'alice', 'b'.repeat(64)]);
      await old.destroy();

      const db = await openDatabase({ databaseUrl: undefined, sqlitePath });
      const rows = await new ApiKeys(db).list();
      await db.destroy();
      assert.deepEqual(
        rows.map((r) => [r.id, r.role]),
        [
          ['key_first', 'operator'],
          ['key_alice', 'tenant'],
        ],
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
