import { IsNull, MoreThan, type FindOptionsWhere } from 'typeorm';
import type { FileRow } from '../db/entities';
import type { FileObject } from '../shared/openai';

export const toFileObject = (row: FileRow): FileObject => ({
  id: row.id,
  object: 'file',
  bytes: row.bytes,
  created_at: row.createdAt,
  filename: row.filename,
  purpose: row.purpose,
  status: 'processed',
  expires_at: row.expiresAt,
  status_details: null,
});

/** Purposes whose content is JSONL and so is decompressed and checked on upload. */
export const JSONL_PURPOSES = new Set<string>(['batch', 'fine-tune', 'evals']);

export const BATCH_FILE_DEFAULT_TTL_SECONDS = 30 * 24 * 3600;

/** Matches files not yet past their `expires_at`: an expired file is gone for clients before cleanup deletes it. */
export const unexpired = (where: FindOptionsWhere<FileRow>): FindOptionsWhere<FileRow>[] => [
  { ...where, expiresAt: IsNull() },
  { ...where, expiresAt: MoreThan(Math.floor(Date.now() / 1000)) },
];

/** The query-builder twin of `unexpired()`, for a file alias `f`; bind `unexpiredParams()`. */
export const UNEXPIRED_SQL = '(f.expiresAt IS NULL OR f.expiresAt > :now)';
export const unexpiredParams = () => ({ now: Math.floor(Date.now() / 1000) });
