import { In, type DataSource } from 'typeorm';
import { ChunkProgressEntity, type BatchRow, type UsageColumns } from '../db/entities';
import type { Batch } from '../shared/openai';
import { isUnfinished } from './lifecycle';

export interface LiveCounts extends UsageColumns {
  completed: number;
  failed: number;
}

export function toBatchObject(row: BatchRow, live?: LiveCounts): Batch {
  const c = live ?? row;
  return {
    id: row.id,
    object: 'batch',
    endpoint: row.endpoint,
    model: row.model,
    errors: row.errors?.length ? { object: 'list', data: row.errors } : null,
    input_file_id: row.inputFileId,
    completion_window: row.completionWindow,
    status: row.status,
    output_file_id: row.outputFileId,
    error_file_id: row.errorFileId,
    created_at: row.createdAt,
    in_progress_at: row.inProgressAt,
    expires_at: row.expiresAt,
    finalizing_at: row.finalizingAt,
    completed_at: row.completedAt,
    failed_at: row.failedAt,
    expired_at: row.expiredAt,
    cancelling_at: row.cancellingAt,
    cancelled_at: row.cancelledAt,
    request_counts: { total: row.total, completed: c.completed, failed: c.failed },
    usage: {
      input_tokens: c.inputTokens,
      input_tokens_details: { cached_tokens: c.cachedTokens },
      output_tokens: c.outputTokens,
      output_tokens_details: { reasoning_tokens: c.reasoningTokens },
      total_tokens: c.inputTokens + c.outputTokens,
    },
    metadata: row.metadata,
    priority: row.priority,
  };
}

/**
 * Counts of batches still running, summed from their chunks' progress rows in one grouped query, so a page
 * of batches never asks Temporal anything.
 */
export async function liveCounts(db: DataSource, rows: BatchRow[]): Promise<Map<string, LiveCounts>> {
  const ids = rows.filter((r) => isUnfinished(r.status)).map((r) => r.id);
  const out = new Map<string, LiveCounts>();
  if (ids.length === 0) return out;
  const sums: Array<Record<string, string | number | null>> = await db
    .getRepository(ChunkProgressEntity)
    .createQueryBuilder('c')
    .select('c.batchId', 'batchId')
    .addSelect('SUM(c.completed)', 'completed')
    .addSelect('SUM(c.failed)', 'failed')
    .addSelect('SUM(c.inputTokens)', 'inputTokens')
    .addSelect('SUM(c.cachedTokens)', 'cachedTokens')
    .addSelect('SUM(c.outputTokens)', 'outputTokens')
    .addSelect('SUM(c.reasoningTokens)', 'reasoningTokens')
    .where({ batchId: In(ids) })
    .groupBy('c.batchId')
    .getRawMany();
  for (const s of sums) {
    out.set(String(s.batchId), {
      completed: Number(s.completed),
      failed: Number(s.failed),
      inputTokens: Number(s.inputTokens),
      cachedTokens: Number(s.cachedTokens),
      outputTokens: Number(s.outputTokens),
      reasoningTokens: Number(s.reasoningTokens),
    });
  }
  return out;
}
