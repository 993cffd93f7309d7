import fs from 'node:fs';
import path from 'node:path';
import { DataSource } from 'typeorm';
import type { Config } from '../config';
import { ENTITIES } from './entities';
import { Init1764201600000 } from './migrations/1764201600000-Init';
import { Stats1764201600001 } from './migrations/1764201600001-Stats';
import { KeyRoles1796094706592 } from './migrations/1796094706592-KeyRoles';
import { IdempotencyKeys1796094806576 } from './migrations/1796094806576-IdempotencyKeys';
import { Webhooks1796200000000 } from './migrations/1796200000000-Webhooks';
import { Priority1796200000001 } from './migrations/1796200000001-Priority';
import { PoolStats1796200000002 } from './migrations/1796200000002-PoolStats';
import { ResultIndex1796200000003 } from './migrations/1796200000003-ResultIndex';

const MIGRATIONS = [
  Init1764201600000,
  Stats1764201600001,
  KeyRoles1796094706592,
  IdempotencyKeys1796094806576,
  Webhooks1796200000000,
  Priority1796200000001,
  PoolStats1796200000002,
  ResultIndex1796200000003,
];

/** PostgreSQL when DATABASE_URL is set, otherwise the embedded SQLite file. Schema comes from migrations only. */
export function createDataSource(
  config: Pick<Config, 'databaseUrl' | 'sqlitePath'>,
  poolSize = 10,
): DataSource {
  const common = { entities: ENTITIES, migrations: MIGRATIONS, synchronize: false, logging: false } as const;
  if (config.databaseUrl) {
    return new DataSource({
      ...common,
      type: 'postgres',
      url: config.databaseUrl,
      // Fail fast when the database is down so the API can answer 503 instead of hanging.
      extra: { max: poolSize, connectionTimeoutMillis: 5000 },
    });
  }
  fs.mkdirSync(path.dirname(config.sqlitePath), { recursive: true });
  return new DataSource({
    ...common,
    type: 'better-sqlite3',
    database: config.sqlitePath,
    // The API, the worker and the CLI share one file: WAL lets readers run beside the writer.
    prepareDatabase: (db: { pragma(s: string): unknown }) => {
      db.pragma('journal_mode = WAL');
      db.pragma('busy_timeout = 10000');
      db.pragma('synchronous = NORMAL');
    },
  });
}

// Any fixed number: it names the lock that keeps the API and workers from migrating at the same time.
const MIGRATION_LOCK = 7461_2026;

export async function openDatabase(config: Pick<Config, 'databaseUrl' | 'sqlitePath'>, poolSize?: number) {
  const ds = createDataSource(config, poolSize);
  await ds.initialize();
  if (ds.options.type !== 'postgres') {
    await ds.runMigrations({ transaction: 'each' });
    return ds;
  }
  const lock = ds.createQueryRunner();
  try {
    await lock.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await ds.runMigrations({ transaction: 'each' });
    await lock.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
  } finally {
    await lock.release();
  }
  return ds;
}
