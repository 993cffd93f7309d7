import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { IsNull, type DataSource } from 'typeorm';
import { ApiKeyEntity, type ApiKeyRow } from '../db/entities';

export interface Principal {
  keyId: string;
  /** Owner of every file and batch created with this key. */
  tenantId: string;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const now = () => Math.floor(Date.now() / 1000);

/**
 * API keys are random 32-byte tokens, so a plain SHA-256 is the right hash (a password KDF would only add
 * latency to every request). Only hashes are stored; lookups are by hash and confirmed in constant time.
 */
export class ApiKeys {
  constructor(private readonly db: DataSource) {}

  private get repo() {
    return this.db.getRepository(ApiKeyEntity);
  }

  async create(opts: { name?: string; tenantId?: string } = {}): Promise<{ key: string; row: ApiKeyRow }> {
    const key = `sk-besh-${randomBytes(32).toString('base64url')}`;
    return { key, row: await this.insert(key, opts) };
  }

  /** Seeds keys from BESH_API_KEYS: each its own tenant, derived from the key so restarts keep ownership. */
  async seed(keys: string[]): Promise<void> {
    for (const key of keys) {
      if (await this.repo.existsBy({ keyHash: sha256(key) })) continue;
      await this.insert(key, {
        name: 'seeded from BESH_API_KEYS',
        tenantId: `tenant_${sha256(`tenant:${key}`).slice(0, 16)}`,
      });
    }
  }

  private async insert(key: string, opts: { name?: string; tenantId?: string }): Promise<ApiKeyRow> {
    const hash = sha256(key);
    const id = `key_${hash.slice(0, 16)}`;
    const row: ApiKeyRow = {
      id,
      tenantId: opts.tenantId ?? `tenant_${randomBytes(8).toString('hex')}`,
      name: opts.name ?? null,
      keyHash: hash,
      keyPrefix: key.slice(0, 12),
      createdAt: now(),
      revokedAt: null,
    };
    await this.repo.insert(row);
    return row;
  }

  list(): Promise<ApiKeyRow[]> {
    return this.repo.find({ order: { createdAt: 'ASC' } });
  }

  async revoke(id: string): Promise<boolean> {
    const res = await this.repo.update({ id, revokedAt: IsNull() }, { revokedAt: now() });
    return (res.affected ?? 0) > 0;
  }

  async count(): Promise<number> {
    return this.repo.countBy({ revokedAt: IsNull() });
  }

  async authenticate(key: string): Promise<Principal | null> {
    const hash = sha256(key);
    const row = await this.repo.findOneBy({ keyHash: hash });
    if (!row || row.revokedAt !== null) return null;
    if (!timingSafeEqual(Buffer.from(row.keyHash, 'hex'), Buffer.from(hash, 'hex'))) return null;
    return { keyId: row.id, tenantId: row.tenantId };
  }
}
