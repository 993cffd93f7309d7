import { ApiKeys } from '../auth/api-keys';
import { loadConfig } from '../config';
import { openDatabase } from '../db/data-source';
import { parseCommand, takePositionals, UsageError } from './args';
import { utc } from './format';

export const KEYS_USAGE = `usage: besh keys create [--name NAME] [--tenant TENANT] [--operator]
       besh keys list
       besh keys revoke KEY_ID

  create    a key for a new tenant (or for TENANT); the key is printed once, only its hash is stored.
            --operator: the key can also read /metrics (counts of every tenant), e.g. for Prometheus
  list      every key with its role, never a whole key
  revoke    the key stops working at once

Key commands work on the database named by DATABASE_URL (or the SQLite file under DATA_DIR), not the API.`;

export async function keys(args: string[]): Promise<void> {
  const { values, positionals } = parseCommand(args, KEYS_USAGE, {
    name: { type: 'string' },
    tenant: { type: 'string' },
    operator: { type: 'boolean', default: false },
  });
  const [action, ...rest] = positionals;
  if (action !== 'create' && action !== 'list' && action !== 'revoke') {
    throw new UsageError(`${action ? `unknown action "${action}"` : 'missing action'}\n\n${KEYS_USAGE}`);
  }
  const [id] = takePositionals(rest, action === 'revoke' ? ['KEY_ID'] : [], KEYS_USAGE);
  const db = await openDatabase(loadConfig());
  try {
    const apiKeys = new ApiKeys(db);
    if (action === 'create') {
      const { key, row } = await apiKeys.create({
        name: values.name,
        tenantId: values.tenant,
        role: values.operator ? 'operator' : 'tenant',
      });
      console.log(
        `Created ${row.id} (${row.role}) for tenant ${row.tenantId}. The key is shown only now:\n\n    ${key}\n`,
      );
    } else if (action === 'list') {
      console.log(['ID', 'TENANT', 'ROLE', 'PREFIX', 'CREATED (UTC)', 'STATUS', 'NAME'].join('\t'));
      for (const r of await apiKeys.list()) {
        const status = r.revokedAt ? 'revoked' : 'active';
        const cells = [r.id, r.tenantId, r.role, `${r.keyPrefix}…`, utc(r.createdAt), status, r.name ?? ''];
        console.log(cells.join('\t'));
      }
    } else if (!(await apiKeys.revoke(id))) {
      throw new Error(`No active key ${id}.`); // not a usage mistake: exit 1, like any lookup that fails
    } else {
      console.log(`Revoked ${id}; it stops working at once.`);
    }
  } finally {
    await db.destroy();
  }
}
