#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ApiKeys } from '../auth/api-keys';
import { ConfigError, loadConfig } from '../config';
import { openDatabase } from '../db/data-source';

const USAGE = `usage: besh keys create [--name NAME] [--tenant TENANT]
       besh keys list
       besh keys revoke KEY_ID

Key commands work on the database named by DATABASE_URL (or the SQLite file under DATA_DIR).`;

class UsageError extends Error {}

async function keysCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { name: { type: 'string' }, tenant: { type: 'string' } },
  });
  const [action, id] = positionals;
  if (!['create', 'list', 'revoke'].includes(action ?? '')) throw new UsageError(USAGE);
  if (action === 'revoke' && !id)
    throw new UsageError('besh keys revoke: give the KEY_ID (see besh keys list)');
  const db = await openDatabase(loadConfig());
  try {
    const keys = new ApiKeys(db);
    if (action === 'create') {
      const { key, row } = await keys.create({ name: values.name, tenantId: values.tenant });
      console.log(`Created ${row.id} for tenant ${row.tenantId}. The key is shown only now:\n\n    ${key}\n`);
    } else if (action === 'list') {
      const rows = await keys.list();
      console.log(['ID', 'TENANT', 'PREFIX', 'CREATED (UTC)', 'STATUS', 'NAME'].join('\t'));
      for (const r of rows) {
        const created = new Date(r.createdAt * 1000).toISOString();
        console.log(
          [
            r.id,
            r.tenantId,
            `${r.keyPrefix}…`,
            created,
            r.revokedAt ? 'revoked' : 'active',
            r.name ?? '',
          ].join('\t'),
        );
      }
    } else if (!(await keys.revoke(id))) {
      throw new UsageError(`No active key ${id}.`);
    } else {
      console.log(`Revoked ${id}; it stops working at once.`);
    }
  } finally {
    await db.destroy();
  }
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === 'keys') return keysCommand(rest);
  throw new UsageError(USAGE);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const known =
    err instanceof UsageError ||
    err instanceof ConfigError ||
    (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
  console.error(known ? (err as Error).message : `besh: ${(err as Error).message ?? err}`);
  process.exit(known ? 2 : 1);
});
