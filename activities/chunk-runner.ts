import type { Context } from '@temporalio/activity';
import { ApplicationFailure, ApplicationFailureCategory } from '@temporalio/common';
import { setMaxListeners } from 'node:events';
import type { ChunkResult, ProcessChunkInput } from '../src/contract/batch-workflow';
import { readLines } from '../src/files/line-reader';
import { loadChunkProgress, saveChunkProgress } from './chunk-progress';
import { resumeChunk, type PartTally, type SegmentWriter } from '../src/results/chunk-segments';
import type { ActivityDeps } from './deps';
import { scanRequestLine, type RequestLine } from './json-scan';
import { errorLine, responseLine, usageOf } from '../src/results/result-lines';
import type { UpstreamOutcome } from './upstream';
import type { Pool } from './upstream-pools';

const PROGRESS_EVERY_MS = 1000;

type Latency = { latencyMsSum: number; latencyCount: number };

/**
 * Runs one chunk of a batch in four steps:
 * - resume: the chunk's stored segments are the checkpoint; every custom_id in them is answered and skipped;
 * - dispatch: read the chunk's lines and send each unanswered request, at most the pool's limit at a time per worker
 *   (the FairLimiter shares them fairly between batches);
 * - settle: write each answer into the next segment, and count it once that is stored;
 * - drain: when the worker shuts down, start nothing new, let the requests in flight finish, and hand the rest
 *   of the chunk to another worker.
 * A kill -9 costs only the requests that were in flight and the answers not yet stored; a cancel aborts them.
 */
export class ChunkRunner {
  /** Temporal's cancellation of this attempt. */
  private readonly cancelled: AbortSignal;
  /** Aborts every request: Temporal cancelled the chunk, or the batch halted (the database said so first). */
  private readonly signal: AbortSignal;
  private readonly halted: { signal: AbortSignal; release(): void };
  /** No new request starts once the chunk is cancelled or the worker drains. */
  private readonly stopStarting: AbortSignal;
  /** Requests started and not yet finished with (answered and stored, or failed). */
  private inFlight = 0;
  /** Resolves the wait for the requests in flight once the last one is finished with. */
  private idle: (() => void) | null = null;
  /** The first request that failed other than by answering (a write error, say): the attempt fails with it. */
  private failure: unknown = null;
  /** When progress was last reported; the start counts, so a chunk shorter than a second saves only at its end. */
  private lastSaved = Date.now();
  /** Requests started and not yet answered (or failed). */
  private unanswered = 0;
  /** True once no more requests will start. */
  private dispatched = false;
  private saving: Promise<unknown> = Promise.resolve();
  /** The upstream pool of the batch's model, found from the first line (validation made every line's the same). */
  private pool!: Pool;

  private constructor(
    private readonly deps: ActivityDeps,
    private readonly input: ProcessChunkInput,
    private readonly ctx: Context,
    private readonly tally: PartTally,
    private readonly latency: Latency,
    private readonly writer: SegmentWriter,
  ) {
    this.cancelled = ctx.cancellationSignal;
    this.halted = deps.stops.watch(input.batchId);
    this.signal = AbortSignal.any([this.cancelled, this.halted.signal]);
    this.stopStarting = AbortSignal.any([this.signal, deps.draining]);
    // Every request in flight listens on these (to abort its upstream call or slot wait): hundreds, not a leak.
    setMaxListeners(0, this.signal, this.stopStarting, deps.draining);
  }

  /** Resume: tallies the chunk's segments, wherever the attempt before ran, and writes on after them. */
  static async resume(deps: ActivityDeps, input: ProcessChunkInput, ctx: Context): Promise<ChunkRunner> {
    const { batchId, chunk } = input;
    const { tally, writer } = await resumeChunk(
      deps.parts,
      batchId,
      chunk.index,
      deps.config.checkpointFlushMs,
    );
    // Latency cannot be recovered from the segments, so a resumed attempt carries on from the saved sums.
    const saved = await loadChunkProgress(deps.db, batchId, chunk.index);
    const latency = { latencyMsSum: saved?.latencyMsSum ?? 0, latencyCount: saved?.latencyCount ?? 0 };
    return new ChunkRunner(deps, input, ctx, tally, latency, writer);
  }

  async run(): Promise<ChunkResult> {
    // One generation can take minutes: heartbeat on a timer too, so cancellation still reaches us. No details:
    // the segments are the checkpoint.
    const beat = setInterval(
      () => this.ctx.heartbeat(),
      Math.max(200, (this.deps.config.heartbeatTimeoutSeconds * 1000) / 3),
    );
    try {
      this.ctx.heartbeat();
      const drained = await this.dispatch().finally(() => {
        this.dispatched = true;
        this.flushIfLast();
        return this.allFinished();
      });
      if (this.signal.aborted) await this.untilCancelled();
      if (this.failure) throw this.failure;
      if (drained) throw workerDraining();
    } catch (err) {
      // Best effort on the way out: the next attempt recounts from the segments anyway.
      await this.saveProgress().catch(() => undefined);
      throw err;
    } finally {
      clearInterval(beat);
      this.halted.release();
      await this.writer.close();
    }
    // On success the totals must land (live counts and stats read them): a failure here retries the chunk,
    // which finds every request answered and only saves again.
    await this.saveProgress();
    return { completed: this.tally.completed, failed: this.tally.failed };
  }

  /**
   * A halted batch's requests are aborted already; the attempt ends with Temporal's own cancellation (the SDK's
   * CancelledFailure), which the heartbeats fetch. A batch halted without its workflow cancelling the chunk (it
   * ended elsewhere) ends the attempt for good once a heartbeat timeout has passed.
   */
  private async untilCancelled(): Promise<never> {
    if (!this.cancelled.aborted) {
      const bound = AbortSignal.timeout(2 * this.deps.config.heartbeatTimeoutSeconds * 1000);
      await new Promise((resolve) =>
        AbortSignal.any([this.cancelled, bound]).addEventListener('abort', resolve),
      );
    }
    this.cancelled.throwIfAborted();
    throw ApplicationFailure.create({
      type: 'BatchHalted',
      message: 'the batch was stopped outside its workflow',
      nonRetryable: true,
    });
  }

  /** Dispatch: starts a request for every unanswered line; true when it stopped because the worker drains. */
  private async dispatch(): Promise<boolean> {
    const { inputFileId, chunk, batchId, endpoint } = this.input;
    const source = await this.deps.blobs.get(inputFileId, { start: chunk.start, end: chunk.end });
    // The adaptive limit's class of the request; validation makes the model the same on every line.
    let model: string | null = null;
    let key = '';
    for await (const { line } of readLines(source)) {
      if (this.signal.aborted || this.failure) return false;
      const request = readRequest(line);
      if (!request || this.tally.done.has(request.customId)) continue;
      if (request.model !== model) {
        model = request.model;
        key = `${endpoint} ${model}`;
        this.pool = this.poolFor(model);
      }
      // The first attempt's slot is taken before its request starts, which holds the reader: at most
      // the pool's limit of requests is read ahead.
      let slot: () => void;
      try {
        // The input carries the batch's priority and deadline, the limiter's class of the key.
        slot = await this.pool.limiter.acquire(batchId, this.stopStarting, chunk.index, this.input);
      } catch (err) {
        // The chunk stops starting requests: cancelled, halted or drained.
        if (this.stopStarting.aborted) return !this.signal.aborted;
        throw err;
      }
      this.inFlight++;
      void this.answer(request, key, slot);
    }
    return false;
  }

  /**
   * Validation refused a model no pool serves; one missing now lost its pool in a configuration change since: the
   * attempt fails and retries, so the batch carries on once the pool is back (or expires).
   */
  private poolFor(model: string): Pool {
    const pool = this.deps.pools.forModel(model);
    if (!pool) throw new Error(`No upstream pool serves the model '${model.slice(0, 200)}' (UPSTREAMS).`);
    return pool;
  }

  /**
   * A retry's slot waits on cancellation only: while the worker drains, the requests in flight finish, retries
   * included.
   */
  private readonly retrySlot = () =>
    this.pool.limiter.acquire(this.input.batchId, this.signal, this.input.chunk.index, this.input);

  /** Sends one request and settles its answer; a failure other than an answer fails the attempt. */
  private async answer({ customId, body }: RequestLine, key: string, firstSlot: () => void): Promise<void> {
    this.unanswered++;
    try {
      let outcome: UpstreamOutcome & { latencyMs: number };
      try {
        outcome = await this.pool.upstream.send(
          this.input.endpoint,
          body,
          this.signal,
          { first: firstSlot, retry: this.retrySlot },
          key,
        );
      } catch (err) {
        this.unanswered--;
        this.flushIfLast();
        throw err;
      }
      await this.settle(customId, outcome);
    } catch (err) {
      this.failure ??= err;
    } finally {
      if (--this.inFlight === 0) this.idle?.();
    }
  }

  private allFinished(): Promise<void> {
    return this.inFlight === 0 ? Promise.resolve() : new Promise((resolve) => (this.idle = resolve));
  }

  /** Settle: writes the answer's line and counts it once the line is stored. */
  private async settle(customId: string, outcome: UpstreamOutcome & { latencyMs: number }): Promise<void> {
    const { batchId } = this.input;
    this.latency.latencyMsSum += outcome.latencyMs;
    this.latency.latencyCount++;
    const line =
      outcome.kind === 'response'
        ? responseLine(batchId, customId, outcome.statusCode, outcome.requestId, outcome.json)
        : JSON.stringify(errorLine(batchId, customId, outcome.code, outcome.message));
    const success = outcome.kind === 'response' && outcome.statusCode < 300;
    const kind = success ? 'out' : 'err';
    let stored: Promise<void>;
    try {
      stored = this.writer.append(kind, line);
    } finally {
      this.unanswered--;
      this.flushIfLast();
    }
    await stored;
    this.tally.add(kind, customId, success ? usageOf(outcome.body) : undefined);
    this.reportProgress();
  }

  /**
   * Once no more requests start, the last answer is written at once rather than at the next flush: a chunk ends
   * without waiting out CHECKPOINT_FLUSH_MS, and a short chunk writes a single segment.
   */
  private flushIfLast(): void {
    if (this.dispatched && this.unanswered === 0) this.writer.flush();
  }

  /**
   * Heartbeats and saves progress at most once a second: every heartbeat is a call into the SDK's native core,
   * which at thousands of requests a second was a noticeable share of the worker's CPU.
   */
  private reportProgress(): void {
    if (Date.now() - this.lastSaved < PROGRESS_EVERY_MS) return;
    this.lastSaved = Date.now();
    this.ctx.heartbeat();
    void this.saveProgress().catch(() => undefined);
  }

  /** Saves the totals as they are when the save before it has finished, so saves land in order. */
  private saveProgress(): Promise<void> {
    const { db } = this.deps;
    const { owner, batchId, chunk } = this.input;
    const save = this.saving.then(() =>
      saveChunkProgress(db, owner, batchId, chunk.index, {
        completed: this.tally.completed,
        failed: this.tally.failed,
        ...this.tally.usage,
        latencyMsSum: Math.round(this.latency.latencyMsSum),
        latencyCount: this.latency.latencyCount,
      }),
    );
    this.saving = save.catch(() => undefined);
    return save;
  }
}

/**
 * A line's request, read without parsing the line (see json-scan); null for a blank line. Validation already proved
 * every other line well-formed: one that is not is an infrastructure fault, and JSON.parse throws on it.
 */
function readRequest(line: Buffer): RequestLine | null {
  const scanned = scanRequestLine(line);
  if (scanned) return scanned;
  const text = line.toString('utf8');
  if (!text.trim()) return null;
  const { custom_id, body } = JSON.parse(text) as { custom_id: string; body: { model?: unknown } | null };
  const model = typeof body?.model === 'string' ? body.model : '';
  return { customId: custom_id, body: Buffer.from(JSON.stringify(body)), model };
}

/** Drain: a benign failure, so the workflow's retry resumes the chunk on another worker at once. */
const workerDraining = () =>
  ApplicationFailure.create({
    type: 'WorkerDraining',
    message: 'the worker is shutting down; the chunk resumes on another worker',
    nextRetryDelay: '1s',
    category: ApplicationFailureCategory.BENIGN,
  });
