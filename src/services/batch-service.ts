import { In, type DataSource } from 'typeorm';
import { liveCounts, toBatchObject } from '../batches/batch-object';
import type { CreateBatchParams } from '../batches/create-params';
import {
  INITIAL_STATUS,
  isCancellable,
  isTerminal,
  isUnfinished,
  UNFINISHED_STATUSES,
  type BatchStatus,
} from '../batches/lifecycle';
import { BatchEntity, ChunkProgressEntity, FileEntity, type BatchRow } from '../db/entities';
import { page } from '../db/paginate';
import { unexpired } from '../files/file-object';
import type { Batch } from '../shared/openai';
import { isBatchId, isFileId, newBatchId } from '../shared/ids';
import { recordOnce } from '../stats/record';
import type { BlobStore } from '../storage/blob-store';
import { notFound, Refused } from './errors';
import { resolveCursor, type Page } from './listing';
import { EngineUnavailable, type BatchEngine } from './ports';
import { failIfRunEnded } from './reconcile';
import { announceNothing, type AnnounceFinal } from '../webhooks/events';

/** How long a delete waits for a running batch to stop before asking the client to retry. */
const STOP_WAIT_MS = 60_000;

/**
 * Batches of one owner: create, read, cancel and delete. The row is created here in the initial status; every
 * later status is the workflow's, written through the status store, so this only asks the engine to move it.
 * The one exception: a batch whose run has ended without a final status is failed here (see reconcile.ts).
 */
/** How often a read of an unfinished batch asks the engine whether its run has ended. */
const READ_RECHECK_MS = 10_000;
const RECHECK_MEMORY = 10_000;

export class BatchService {
  private readonly lastRecheck = new Map<string, number>();
  private readonly batches;

  constructor(
    private readonly db: DataSource,
    private readonly blobs: BlobStore,
    private readonly engine: BatchEngine,
    private readonly stopWaitMs = STOP_WAIT_MS,
    private readonly readRecheckMs = READ_RECHECK_MS,
    /** Told when a batch whose run ended is failed here (webhooks). */
    private readonly announce: AnnounceFinal = announceNothing,
  ) {
    this.batches = db.getRepository(BatchEntity);
  }

  async create(owner: string, params: CreateBatchParams): Promise<Batch> {
    const file = isFileId(params.inputFileId)
      ? await this.db.getRepository(FileEntity).findOneBy(unexpired({ id: params.inputFileId, owner }))
      : null;
    if (!file) throw notFound('File', params.inputFileId);
    if (file.purpose !== 'batch') {
      throw new Refused(
        'invalid',
        `The input file must have purpose 'batch', not '${file.purpose}'.`,
        'invalid_file_purpose',
        'input_file_id',
      );
    }
    const createdAt = Math.floor(Date.now() / 1000);
    const expiresAt = createdAt + params.windowSeconds;
    const row = newBatchRow({
      id: newBatchId(),
      owner,
      endpoint: params.endpoint,
      inputFileId: file.id,
      completionWindow: params.completionWindow,
      createdAt,
      expiresAt,
      metadata: params.metadata,
      outputExpiresAfterSeconds: params.outputExpiresAfterSeconds,
      priority: params.priority ?? 'normal',
    });
    // The row exists before the run so its first activity finds it; it goes again if the engine refuses.
    await this.batches.insert({ ...row }); // a copy: insert() writes back the defaults it reads (as strings on PG)
    try {
      await this.engine.start({
        batchId: row.id,
        owner,
        inputFileId: file.id,
        endpoint: params.endpoint,
        expiresAtMs: expiresAt * 1000,
        priority: row.priority,
      });
    } catch (err) {
      await this.batches.delete({ id: row.id });
      // Unanswered, the start may still take effect: such a run finds no batch and ends without doing anything,
      // and is ended here too in case it got further.
      if (err instanceof EngineUnavailable) void this.engine.abandon(row.id);
      throw err;
    }
    await recordOnce(this.db, `created:${row.id}`, owner, createdAt, { batches_created: 1 });
    return toBatchObject(row);
  }

  async get(owner: string, id: string): Promise<Batch> {
    const row = await this.findOwned(owner, id);
    if (!isUnfinished(row.status) || this.recheckedRecently(row.id)) return this.present(row);
    // A read answers from the database when the engine does not.
    return this.present(await this.settled(row).catch(() => row));
  }

  /** Newest first, with live counts for batches still running. */
  async list(
    owner: string,
    opts: { limit: number; after?: string; status?: BatchStatus },
  ): Promise<Page<Batch>> {
    const after = await resolveCursor(opts.after, 'Batch', isBatchId, (id) =>
      this.batches.findOneBy({ id, owner }),
    );
    const qb = this.batches.createQueryBuilder('b').where('b.owner = :owner', { owner });
    if (opts.status) qb.andWhere('b.status = :status', { status: opts.status });
    const { rows, hasMore } = await page(qb, { limit: opts.limit, order: 'desc', after });
    const live = await liveCounts(this.db, rows);
    return { data: rows.map((r) => toBatchObject(r, live.get(r.id))), hasMore };
  }

  async cancel(owner: string, id: string): Promise<Batch> {
    const row = await this.settled(await this.findOwned(owner, id));
    if (!(await this.requestCancel(row))) {
      const { status } = await this.batches.findOneByOrFail({ id: row.id });
      throw new Refused(
        'conflict',
        `Cannot cancel a batch whose status is ${status}.`,
        'batch_not_cancellable',
      );
    }
    return this.present(await this.batches.findOneByOrFail({ id: row.id }));
  }

  /** Not in OpenAI's API (kept from the original BESH): a running batch is cancelled first; its input file stays. */
  async delete(owner: string, id: string): Promise<void> {
    const row = await this.settled(await this.findOwned(owner, id));
    if (!isTerminal(row.status)) {
      await this.requestCancel(row);
      if (!(await this.engine.waitUntilClosed(row.id, this.stopWaitMs))) {
        throw new Refused(
          'retry_later',
          'The batch is still stopping; retry the delete in a moment.',
          'batch_stopping',
        );
      }
    }
    const { outputFileId, errorFileId } = await this.batches.findOneByOrFail({ id: row.id });
    const results = [outputFileId, errorFileId].filter((f): f is string => f !== null);
    await this.db.transaction(async (tx) => {
      if (results.length) await tx.getRepository(FileEntity).delete(results);
      await tx.getRepository(ChunkProgressEntity).delete({ batchId: row.id });
      await tx.getRepository(BatchEntity).delete({ id: row.id });
    });
    // Rows first: a file is never listed without its content, and a leftover blob is only garbage.
    for (const f of results) await this.blobs.delete(f);
  }

  /** Unfinished batches by status (every unfinished status, zeros included), of one owner or of everyone. */
  async unfinishedByStatus(owner?: string): Promise<Record<string, number>> {
    const qb = this.batches
      .createQueryBuilder('b')
      .select('b.status', 'status')
      .addSelect('COUNT(*)', 'n')
      .where({ status: In(UNFINISHED_STATUSES) });
    if (owner !== undefined) qb.andWhere('b.owner = :owner', { owner });
    const rows: Array<{ status: string; n: string | number }> = await qb.groupBy('b.status').getRawMany();
    return Object.fromEntries(
      UNFINISHED_STATUSES.map((s) => [s, Number(rows.find((r) => r.status === s)?.n ?? 0)]),
    );
  }

  private async findOwned(owner: string, id: string): Promise<BatchRow> {
    const row = isBatchId(id) ? await this.batches.findOneBy({ id, owner }) : null;
    if (!row) throw notFound('Batch', id);
    return row;
  }

  /**
   * Clients poll a running batch several times a second; asking the engine each time cost more than the
   * poll itself, and a run that ended outside its normal path is as well found a few seconds later.
   */
  private recheckedRecently(batchId: string): boolean {
    const now = Date.now();
    if (now - (this.lastRecheck.get(batchId) ?? -Infinity) < this.readRecheckMs) return true;
    if (this.lastRecheck.size >= RECHECK_MEMORY) this.lastRecheck.clear(); // bounded: forgetting only costs a call
    this.lastRecheck.set(batchId, now);
    return false;
  }

  /** The row as it is once an unfinished batch whose run has ended is failed; one engine call when unfinished. */
  private async settled(row: BatchRow): Promise<BatchRow> {
    if (!isUnfinished(row.status)) return row;
    await failIfRunEnded(this.db, this.engine, row.id, this.announce);
    return this.batches.findOneByOrFail({ id: row.id });
  }

  private async present(row: BatchRow): Promise<Batch> {
    return toBatchObject(row, (await liveCounts(this.db, [row])).get(row.id));
  }

  /** Asks the run to cancel; false when the batch finished (or is finalizing) and cannot be cancelled. */
  private async requestCancel(row: BatchRow): Promise<boolean> {
    if (!isCancellable(row.status)) return row.status === 'cancelling';
    if (await this.engine.cancel(row.id)) return true;
    // The run refused: the batch finished, or began finalizing, between our read and the request.
    return (await this.batches.findOneByOrFail({ id: row.id })).status === 'cancelling';
  }
}

/** A batch as created, in the initial status, with nothing counted or stamped yet. */
function newBatchRow(
  fields: Pick<
    BatchRow,
    | 'id'
    | 'owner'
    | 'endpoint'
    | 'inputFileId'
    | 'completionWindow'
    | 'createdAt'
    | 'expiresAt'
    | 'metadata'
    | 'outputExpiresAfterSeconds'
    | 'priority'
  >,
): BatchRow {
  return {
    ...fields,
    model: null,
    status: INITIAL_STATUS,
    outputFileId: null,
    errorFileId: null,
    inProgressAt: null,
    finalizingAt: null,
    completedAt: null,
    failedAt: null,
    expiredAt: null,
    cancellingAt: null,
    cancelledAt: null,
    total: 0,
    completed: 0,
    failed: 0,
    inputTokens: 0,
    cachedTokens: 0,
    outputTokens: 0,
    reasoningTokens: 0,
    errors: null,
    resultIndex: null,
  };
}
