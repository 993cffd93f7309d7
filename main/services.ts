import fs from 'node:fs';
import path from 'node:path';
import { ApiKeys } from '../src/auth/api-keys';
import type { Config } from '../src/config';
import { openDatabase } from '../src/db/data-source';
import { openBlobStores } from '../src/storage/open-blob-stores';

/** The database, blob stores (files, and checkpoint parts) and keys every BESH process opens the same way. */
export async function openServices(config: Config) {
  const db = await openDatabase(config);
  const { files: blobs, parts } = openBlobStores(config);
  const keys = new ApiKeys(db);
  return { db, blobs, parts, keys };
}

/**
 * Seeds BESH_API_KEYS (tenant keys) and BESH_OPERATOR_KEYS; with no key at all, makes one for a first local start
 * and says where it is. That key is the operator's, so it also reads /metrics.
 */
export async function ensureApiKey(config: Config, keys: ApiKeys): Promise<void> {
  await keys.seed(config.seedApiKeys, 'tenant');
  await keys.seed(config.seedOperatorKeys, 'operator');
  if ((await keys.count()) > 0) return;
  const { key } = await keys.create({ name: 'first start', role: 'operator' });
  const file = path.join(config.dataDir, 'api-key.txt');
  fs.writeFileSync(file, key + '\n', { mode: 0o600 });
  console.log(`\nCreated an operator API key (also saved in ${file}):\n\n    ${key}\n`);
}

/** Runs `fn` on SIGINT/SIGTERM once; a second signal exits at once. */
export function onShutdown(fn: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(1);
    stopping = true;
    console.log(`${signal}: shutting down`);
    fn().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error('shutdown failed', err);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
}
