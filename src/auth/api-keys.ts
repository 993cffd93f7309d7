import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { IsNull, type DataSource } from 'typeorm';
import { ApiKeyEntity, type ApiKeyRow, type KeyRole } from '../db/entities';

export interface Principal {
  keyId: string;
  /** Owner of every file and batch created with this key. */
  tenantId: string;
  role: KeyRole;
}

interface KeyOptions {
  name?: string;
  tenantId?: string;
  role?: KeyRole;
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

  async create(opts: KeyOptions = {}): Promise<{ key: string; row: ApiKeyRow }> {
    const key = `sk-besh-${randomBytes(32).toString('base64url')}`;
    return { key, row: await this.insert(key, opts) };
  }

  /**
   * Seeds keys from the environment (BESH_API_KEYS as tenant keys, BESH_OPERATOR_KEYS as operator keys): each its
   * own tenant, derived from the key so restarts keep ownership. The environment decides a seeded key's role, so
   * moving a key from one list to the other changes its role at the next start and keeps its tenant.
   */
  async seed(keys: string[], role: KeyRole = 'tenant'): Promise<void> {
    for (const key of keys) {
      const keyHash = sha256(key);
      const existing = await this.repo.findOneBy({ keyHash });
      if (existing) {
        if (existing.role !== role) await this.repo.update({ keyHash }, { role });
        continue;
      }
      await this.insert(key, {
        name: `seeded from ${role === 'operator' ? 'BESH_OPERATOR_KEYS' : 'BESH_API_KEYS'}`,
        tenantId: `tenant_${sha256(`tenant:${key}`).slice(0, 16)}`,
        role,
      });
    }
  }

  private async insert(key: string, opts: KeyOptions): Promise<ApiKeyRow> {
    const hash = sha256(key);
    const id = `key_${hash.slice(0, 16)}`;
    const row: ApiKeyRow = {
      id,
      tenantId: opts.tenantId ?? `tenant_${randomBytes(8).toString('hex')}`,
      role: opts.role ?? 'tenant',
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
    return { keyId: row.id, tenantId: row.tenantId, role: row.role };
  }
}
