import { heartbeat } from '@temporalio/activity';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import {
  BatchEntity,
  ChunkProgressEntity,
  FileEntity,
  type FileRow,
  type ResultIndex,
} from '../src/db/entities';
import { readLines } from '../src/files/line-reader';
import { batchResultFileId } from '../src/shared/ids';
import type { Chunk, FinalizeInput, FinalizeResult, MissingLine } from '../src/contract/batch-workflow';
import {
  deleteBatchSegments,
  PartTally,
  readSegments,
  segmentsByChunk,
  type PartKind,
} from '../src/results/chunk-segments';
import type { ActivityDeps } from './deps';
import { addUsage, errorLine, zeroUsage } from '../src/results/result-lines';

const NEWLINE = Buffer.from('\n');

/** Writes `lines` into a blob as they are produced, and deletes it again when nothing was written. */
class ResultFileWriter {
  readonly stream = new PassThrough();
  lines = 0;
  readonly stored: Promise<{ bytes: number }>;

  constructor(
    private readonly deps: ActivityDeps,
    readonly id: string,
  ) {
    this.stored = deps.blobs.put(id, this.stream);
    this.stored.catch(() => undefined); // awaited in finish(); a failure must not go unhandled meanwhile
  }

  async write(chunk: Buffer | string): Promise<void> {
    if (this.stream.write(chunk)) return;
    // A store that gave up destroys the stream, and 'drain' never comes: its failure ends the wait instead.
    await Promise.race([once(this.stream, 'drain'), this.stored]);
  }

  /** After a failure: ends the upload (an S3 store aborts it), so a failed attempt leaves nothing pending. */
  abandon(err: unknown): void {
    this.stream.destroy(err instanceof Error ? err : new Error(String(err)));
  }

  async finish(): Promise<number | null> {
    this.stream.end();
    const { bytes } = await this.stored;
    if (this.lines > 0) return bytes;
    await this.deps.blobs.delete(this.id);
    return null;
  }
}

/** The error lines of a chunk's requests that never got an answer (the chunk was cancelled, expired or failed). */
async function writeMissing(
  deps: ActivityDeps,
  writer: ResultFileWriter,
  input: FinalizeInput,
  chunk: Chunk,
  tally: PartTally,
  missing: MissingLine,
): Promise<void> {
  const source = await deps.blobs.get(input.inputFileId, { start: chunk.start, end: chunk.end });
  for await (const { line } of readLines(source)) {
    const text = line.toString('utf8');
    if (!text.trim()) continue;
    const customId = (JSON.parse(text) as { custom_id: string }).custom_id;
    if (tally.done.has(customId)) continue;
    writer.lines++;
    await writer.write(
      JSON.stringify(errorLine(input.batchId, customId, missing.code, missing.message)) + '\n',
    );
  }
}

/**
 * Streams the chunks' segments into the batch's output and error files, in chunk order, and records the totals.
 * Re-runnable: result file ids derive from the batch id and nothing is deleted here (cleanupBatch does that).
 */
export function finalizeBatchActivity(deps: ActivityDeps) {
  return async function finalizeBatch(input: FinalizeInput): Promise<FinalizeResult> {
    const { batchId } = input;
    const batch = await deps.db.getRepository(BatchEntity).findOneByOrFail({ id: batchId });
    const writers: Record<PartKind, ResultFileWriter> = {
      out: new ResultFileWriter(deps, batchResultFileId(batchId, 'output')),
      err: new ResultFileWriter(deps, batchResultFileId(batchId, 'error')),
    };
    const totalUsage = zeroUsage();
    const incomplete = new Set(input.incomplete);
    const index: ResultIndex = { out: [], err: [] };
    try {
      const stored = segmentsByChunk(deps.parts, batchId);
      let next = await stored.next();
      for (const chunk of input.chunks) {
        heartbeat(chunk.index);
        const before = { out: writers.out.lines, err: writers.err.lines };
        while (!next.done && next.value.chunk < chunk.index) next = await stored.next();
        const segments = !next.done && next.value.chunk === chunk.index ? next.value.segments : [];
        const tally = new PartTally();
        for await (const { kind, line, customId, usage } of readSegments(deps.parts, segments)) {
          tally.add(kind, customId, usage);
          writers[kind].lines++;
          await writers[kind].write(Buffer.concat([line, NEWLINE]));
        }
        addUsage(totalUsage, tally.usage);
        if (incomplete.has(chunk.index) && input.missing) {
          await writeMissing(deps, writers.err, input, chunk, tally, input.missing);
        }
        index.out.push(writers.out.lines - before.out);
        index.err.push(writers.err.lines - before.err);
      }
    } catch (err) {
      writers.out.abandon(err);
      writers.err.abandon(err);
      throw err;
    }
    const [outBytes, errBytes] = await Promise.all([writers.out.finish(), writers.err.finish()]);

    const now = Math.floor(Date.now() / 1000);
    const expiresAt = batch.outputExpiresAfterSeconds ? now + batch.outputExpiresAfterSeconds : null;
    const fileRow = (w: ResultFileWriter, bytes: number, kind: string): FileRow => ({
      id: w.id,
      owner: batch.owner,
      filename: `${batchId}_${kind}.jsonl`,
      purpose: 'batch_output',
      bytes,
      createdAt: now,
      expiresAt,
    });
    const rows = [
      outBytes === null ? null : fileRow(writers.out, outBytes, 'output'),
      errBytes === null ? null : fileRow(writers.err, errBytes, 'error'),
    ].filter((r): r is FileRow => r !== null);
    const result: FinalizeResult = {
      completed: writers.out.lines,
      failed: writers.err.lines,
      outputFileId: outBytes === null ? null : writers.out.id,
      errorFileId: errBytes === null ? null : writers.err.id,
    };
    await deps.db.transaction(async (tx) => {
      if (rows.length) await tx.getRepository(FileEntity).upsert(rows, ['id']);
      await tx.getRepository(BatchEntity).update(
        { id: batchId },
        {
          completed: result.completed,
          failed: result.failed,
          outputFileId: result.outputFileId,
          errorFileId: result.errorFileId,
          resultIndex: index,
          ...totalUsage,
        },
      );
    });
    return result;
  };
}

/** Removes a finished batch's scratch state. Runs after the final status is recorded; idempotent. */
export function cleanupBatchActivity(deps: ActivityDeps) {
  return async function cleanupBatch(input: { batchId: string }): Promise<void> {
    await deleteBatchSegments(deps.parts, input.batchId);
    await deps.db.getRepository(ChunkProgressEntity).delete({ batchId: input.batchId });
  };
}
