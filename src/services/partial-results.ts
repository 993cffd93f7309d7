import type { DataSource } from 'typeorm';
import { isTerminal } from '../batches/lifecycle';
import { BatchEntity, type BatchRow } from '../db/entities';
import type { PartKind } from '../results/chunk-segments';
import {
  decodeCursor,
  encodeCursor,
  InvalidCursor,
  startCursor,
  type PartialCursor,
} from '../results/partial-cursor';
import { readFinished, readRunning, type PageLimits, type PartialPage } from '../results/partial-results';
import { isBatchId } from '../shared/ids';
import { BlobNotFoundError, type BlobStore } from '../storage/blob-store';
import { notFound, Refused } from './errors';

export type ResultKind = 'output' | 'error';
const PART_KIND: Record<ResultKind, PartKind> = { output: 'out', error: 'err' };

export interface PartialQuery {
  kind: ResultKind;
  /** The `x-next-after` of the page before; none for the first page. */
  after?: string;
  /** Lines at most in this page. */
  limit: number;
}

export interface PartialResults {
  lines: Buffer[];
  /** Where the next page starts. */
  nextAfter: string;
  /** False once the batch is finished and every line of this kind was given. */
  hasMore: boolean;
}

/** A page holds about this many bytes at most (always at least one line): the page is held in memory. */
const PAGE_BYTES = 8 * 1024 * 1024;

/**
 * The result lines a batch has so far, page by page, before and after it finishes: a BESH extension
 * (GET /v1/batches/{id}/partial_results). Following the cursor from the first page until `hasMore` is false gives
 * every line of the final result file exactly once.
 */
export class PartialResultsService {
  private readonly batches;

  constructor(
    db: DataSource,
    private readonly blobs: BlobStore,
    private readonly parts: BlobStore,
    private readonly pageBytes = PAGE_BYTES,
  ) {
    this.batches = db.getRepository(BatchEntity);
  }

  async read(owner: string, batchId: string, query: PartialQuery): Promise<PartialResults> {
    const kind = PART_KIND[query.kind];
    const cursor = query.after === undefined ? startCursor(kind) : parseCursor(query.after, kind);
    const limits: PageLimits = { lines: query.limit, bytes: this.pageBytes };
    let row = await this.find(owner, batchId);
    try {
      if (!finished(row)) {
        if (cursor.phase === 'file') throw stale();
        let page: PartialPage | null = null;
        try {
          page = await readRunning(this.parts, batchId, cursor, limits);
        } catch (err) {
          if (!(err instanceof BlobNotFoundError)) throw err;
        }
        // Finalization commits the result files before cleanup deletes a single segment: if the batch still has
        // none now, no segment went while they were read. Otherwise the page may lack some, and the files hold all.
        row = await this.find(owner, batchId);
        if (!finished(row)) {
          if (!page) throw new Error(`a segment of unfinished batch ${batchId} is missing`);
          return present(page);
        }
      }
      const fileId = kind === 'out' ? row.outputFileId : row.errorFileId;
      return present(await readFinished(this.blobs, fileId, row.resultIndex, cursor, limits));
    } catch (err) {
      if (err instanceof InvalidCursor) throw stale();
      throw err;
    }
  }

  private async find(owner: string, id: string): Promise<BatchRow> {
    const row = isBatchId(id) ? await this.batches.findOneBy({ id, owner }) : null;
    if (!row) throw notFound('Batch', id);
    return row;
  }
}

/** Finalization recorded the result files (their index comes with them), or the batch ended without any. */
const finished = (row: BatchRow) => row.resultIndex !== null || isTerminal(row.status);

const present = (page: PartialPage): PartialResults => ({
  lines: page.lines,
  nextAfter: encodeCursor(page.next),
  hasMore: page.hasMore,
});

function parseCursor(token: string, kind: PartKind): PartialCursor {
  try {
    return decodeCursor(token, kind);
  } catch (err) {
    if (!(err instanceof InvalidCursor)) throw err;
    throw err.message === 'kind'
      ? new Refused(
          'invalid',
          "Invalid 'after': this cursor belongs to the other kind of results.",
          'invalid_cursor',
          'after',
        )
      : new Refused(
          'invalid',
          "Invalid 'after': pass the x-next-after header of the page before, unchanged.",
          'invalid_cursor',
          'after',
        );
  }
}

const stale = () =>
  new Refused(
    'invalid',
    "Invalid 'after': this cursor cannot continue this batch's results; start again without 'after'.",
    'invalid_cursor',
    'after',
  );
