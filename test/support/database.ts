import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';

/** PostgreSQL unless BESH_TEST_DB=sqlite: the suite runs against both stores. */
export const testDbKind = (process.env.BESH_TEST_DB ?? 'postgres') as 'postgres' | 'sqlite';
const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  env: Record<string, string>;
  drop(): Promise<void>;
}

/** A fresh, empty database for one test stack. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `besh_test_${randomBytes(6).toString('hex')}`;
  if (testDbKind === 'sqlite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'besh-sqlite-'));
    return {
      env: { SQLITE_PATH: path.join(dir, `${name}.sqlite`) },
      drop: async () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  }
  const admin = new Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    env: { DATABASE_URL: url.toString() },
    async drop() {
      const c = new Client({ connectionString: ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}
