import type { DataSource } from 'typeorm';
import { ChunkProgressEntity, type ChunkProgressRow } from '../src/db/entities';
import { addToBucket } from '../src/stats/record';

type Counters = Omit<ChunkProgressRow, 'batchId' | 'chunkIndex'>;
const KEYS: Array<keyof Counters> = [
  'completed',
  'failed',
  'inputTokens',
  'cachedTokens',
  'outputTokens',
  'reasoningTokens',
  'latencyMsSum',
  'latencyCount',
];

export function loadChunkProgress(db: DataSource, batchId: string, chunkIndex: number) {
  return db.getRepository(ChunkProgressEntity).findOneBy({ batchId, chunkIndex });
}

/**
 * Writes a chunk's absolute progress and adds only what is new since the last write to the owner's stats
 * bucket, in one transaction: a retried or resumed attempt reports the same totals again and counts nothing twice.
 */
export async function saveChunkProgress(
  db: DataSource,
  owner: string,
  batchId: string,
  chunkIndex: number,
  next: Counters,
) {
  await db.transaction(async (tx) => {
    const repo = tx.getRepository(ChunkProgressEntity);
    const prev = await repo.findOneBy({ batchId, chunkIndex });
    const row = { batchId, chunkIndex } as ChunkProgressRow;
    const delta: Record<string, number> = {};
    for (const k of KEYS) {
      row[k] = Math.max(next[k], prev?.[k] ?? 0); // totals never go back, so a later write never recounts
      delta[k] = row[k] - (prev?.[k] ?? 0);
    }
    await repo.upsert(row, ['batchId', 'chunkIndex']);
    await addToBucket(tx, owner, Math.floor(Date.now() / 1000), {
      requests_succeeded: delta.completed,
      requests_failed: delta.failed,
      input_tokens: delta.inputTokens,
      output_tokens: delta.outputTokens,
      latency_ms_sum: Math.round(delta.latencyMsSum),
      latency_count: delta.latencyCount,
    });
  });
}
