import { createHash, randomBytes } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function randomToken(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const b of bytes) out += ALPHABET[b % 62];
  return out;
}

/**
 * Ids start with the creation time in milliseconds (base 36, fixed width), so ordering by id is creation order,
 * even within one second; lists and the batch queue rely on it.
 */
const timeOrdered = () => Date.now().toString(36).padStart(9, '0') + randomToken(15);

export const newFileId = () => `file-${timeOrdered()}`;
export const newBatchId = () => `batch_${timeOrdered()}`;
export const newWebhookEndpointId = () => `we_${timeOrdered()}`;

/** Output and error files get ids derived from their batch, so a retried finalization reuses them. */
export const batchResultFileId = (batchId: string, kind: 'output' | 'error') =>
  `file-${createHash('sha256').update(`${batchId}:${kind}`).digest('hex').slice(0, 24)}`;

// Ids are checked before they reach storage or SQL: anything else is simply "not found".
export const isFileId = (id: string) => /^file-[A-Za-z0-9]{1,64}$/.test(id);
export const isBatchId = (id: string) => /^batch_[A-Za-z0-9]{1,64}$/.test(id);
export const isWebhookEndpointId = (id: string) => /^we_[A-Za-z0-9]{1,60}$/.test(id);
