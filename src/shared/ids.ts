import { createHash, randomBytes } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function randomToken(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const b of bytes) out += ALPHABET[b % 62];
  return out;
}

export const newFileId = () => `file-${randomToken(24)}`;
export const newBatchId = () => `batch_${randomToken(24)}`;

/** Output and error files get ids derived from their batch, so a retried finalization reuses them. */
export const batchResultFileId = (batchId: string, kind: 'output' | 'error') =>
  `file-${createHash('sha256').update(`${batchId}:${kind}`).digest('hex').slice(0, 24)}`;

// Ids are checked before they reach storage or SQL: anything else is simply "not found".
export const isFileId = (id: string) => /^file-[A-Za-z0-9]{1,64}$/.test(id);
export const isBatchId = (id: string) => /^batch_[A-Za-z0-9]{1,64}$/.test(id);
