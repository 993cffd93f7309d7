import type { DataSource } from 'typeorm';
import { FileEntity } from '../db/entities';
import { UNEXPIRED_SQL, unexpiredParams } from './file-object';

export interface StorageUsage {
  files: number;
  bytes: number;
  by_purpose: Record<string, { files: number; bytes: number }>;
}

/** What a tenant stores, by purpose; expired files awaiting cleanup are not counted. One grouped query. */
export async function storageUsage(db: DataSource, owner: string): Promise<StorageUsage> {
  const rows: Array<{ purpose: string; files: string | number; bytes: string | number | null }> = await db
    .getRepository(FileEntity)
    .createQueryBuilder('f')
    .select('f.purpose', 'purpose')
    .addSelect('COUNT(*)', 'files')
    .addSelect('SUM(f.bytes)', 'bytes')
    .where('f.owner = :owner', { owner })
    .andWhere(UNEXPIRED_SQL, unexpiredParams())
    .groupBy('f.purpose')
    .getRawMany();
  const usage: StorageUsage = { files: 0, bytes: 0, by_purpose: {} };
  for (const r of rows) {
    const entry = { files: Number(r.files), bytes: Number(r.bytes ?? 0) };
    usage.by_purpose[r.purpose] = entry;
    usage.files += entry.files;
    usage.bytes += entry.bytes;
  }
  return usage;
}
