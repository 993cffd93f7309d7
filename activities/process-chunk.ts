import { Context } from '@temporalio/activity';
import { setMaxListeners } from 'node:events';
import { ApplicationFailure, ApplicationFailureCategory } from '@temporalio/common';
import { readLines } from '../src/files/line-reader';
import type { ChunkResult, ProcessChunkInput } from '../src/contract/batch-workflow';
import { ChunkPartWriter, scanChunkParts, type PartTally } from './chunk-parts';
import { loadChunkProgress, saveChunkProgress } from './chunk-progress';
import type { ActivityDeps } from './deps';
import { addUsage, errorLine, responseLine, usageOf } from './result-lines';

/** Compact checkpoint sent with every heartbeat; the part files hold the rest. */
interface Checkpoint {
  completed: number;
  failed: number;
}

const PROGRESS_EVERY_MS = 1000;

/**
 * Sends one chunk's requests upstream, at most MAX_WORKERS at a time per worker (shared fairly between batches),
 * appending each result to the chunk's part files. A retried attempt first reads those files and skips every
 * custom_id already answered, so a killed worker costs only the requests that were in flight, and a worker
 * asked to shut down finishes its in-flight requests and hands the rest of the chunk to another worker.
 */
export function processChunkActivity(deps: ActivityDeps) {
  return async function processChunk(input: ProcessChunkInput): Promise<ChunkResult> {
    const { batchId, chunk } = input;
    const ctx = Context.current();
    const signal = ctx.cancellationSignal;
    const tally = await scanChunkParts(deps.partsRoot, batchId, chunk.index);
    const writer = await ChunkPartWriter.open(deps.partsRoot, batchId, chunk.index);
    // Latency cannot be recovered from the part files, so a resumed attempt carries on from the saved sums.
    const saved = await loadChunkProgress(deps.db, batchId, chunk.index);
    const latency = { latencyMsSum: saved?.latencyMsSum ?? 0, latencyCount: saved?.latencyCount ?? 0 };
    const checkpoint = (): Checkpoint => ({ completed: tally.completed, failed: tally.failed });
    const saveProgress = () =>
      saveChunkProgress(deps.db, input.owner, batchId, chunk.index, {
        completed: tally.completed,
        failed: tally.failed,
        ...tally.usage,
        latencyMsSum: Math.round(latency.latencyMsSum),
        latencyCount: latency.latencyCount,
      });
    // One generation can take minutes: heartbeat on a timer too, so cancellation still reaches us.
    const beat = setInterval(
      () => ctx.heartbeat(checkpoint()),
      Math.max(200, (deps.config.heartbeatTimeoutSeconds * 1000) / 3),
    );
    let lastSaved = 0;
    let saving: Promise<unknown> = Promise.resolve();
    const inFlight = new Set<Promise<void>>();
    let failure: unknown = null;
    // Each finished request heartbeats and saves progress, at most once a second: every heartbeat is a call into
    // the SDK's native core, which at thousands of requests a second was a noticeable share of the worker's CPU.
    const settled = () => {
      if (Date.now() - lastSaved < PROGRESS_EVERY_MS) return;
      lastSaved = Date.now();
      ctx.heartbeat(checkpoint());
      saving = saving.then(saveProgress).catch(() => undefined);
    };
    try {
      ctx.heartbeat(checkpoint());
      const source = await deps.blobs.get(input.inputFileId, { start: chunk.start, end: chunk.end });
      const acquireSlot = () => deps.limiter.acquire(batchId, signal, chunk.index);
      // While the worker drains, no new request starts; those in flight finish and are written.
      const stopStarting = AbortSignal.any([signal, deps.draining]);
      // Every request in flight listens on these (to abort its upstream call or slot wait): hundreds, not a leak.
      setMaxListeners(0, signal, stopStarting, deps.draining);
      let drained = false;
      for await (const { line } of readLines(source)) {
        if (signal.aborted || failure) break;
        if (deps.draining.aborted) {
          drained = true;
          break;
        }
        const text = line.toString('utf8');
        if (!text.trim()) continue;
        // Validation already proved every line well-formed; a line that is not is an infrastructure fault.
        const request = JSON.parse(text) as { custom_id: string; body: unknown };
        if (tally.done.has(request.custom_id)) continue;
        // Hold the reader until a slot is free, so at most MAX_WORKERS parsed requests exist at once.
        const release = await deps.limiter
          .acquire(batchId, stopStarting, chunk.index)
          .catch((err: unknown) => {
            if (signal.aborted || !deps.draining.aborted) throw err;
            return null;
          });
        if (!release) {
          drained = true;
          break;
        }
        let first = true;
        const slot = () => (first ? ((first = false), Promise.resolve(release)) : acquireSlot());
        const task: Promise<void> = send(request.custom_id, JSON.stringify(request.body), slot, tally)
          .then(settled, (err: unknown) => {
            failure ??= err;
          })
          .finally(() => inFlight.delete(task));
        inFlight.add(task);
      }
      await Promise.all(inFlight);
      signal.throwIfAborted(); // the SDK's own CancelledFailure, rather than a request's AbortError
      if (failure) throw failure;
      if (drained) {
        throw ApplicationFailure.create({
          type: 'WorkerDraining',
          message: 'the worker is shutting down; the chunk resumes on another worker',
          nextRetryDelay: '1s',
          category: ApplicationFailureCategory.BENIGN,
        });
      }
    } catch (err) {
      // Best effort on the way out: the next attempt recounts from the part files anyway.
      await Promise.all(inFlight);
      await saving;
      await saveProgress().catch(() => undefined);
      throw err;
    } finally {
      clearInterval(beat);
      await writer.close();
    }
    // On success the totals must land (live counts and stats read them): a failure here retries the chunk,
    // which finds every request answered and only saves again.
    await saving;
    await saveProgress();
    return checkpoint();

    async function send(
      customId: string,
      body: string,
      slot: () => Promise<() => void>,
      t: PartTally,
    ): Promise<void> {
      const outcome = await deps.upstream.send(input.endpoint, body, signal, slot);
      latency.latencyMsSum += outcome.latencyMs;
      latency.latencyCount++;
      if (outcome.kind === 'response' && outcome.statusCode < 300) {
        await writer.append(
          'out',
          responseLine(batchId, customId, outcome.statusCode, outcome.requestId, outcome.body),
        );
        t.completed++;
        addUsage(t.usage, usageOf(outcome.body));
      } else {
        await writer.append(
          'err',
          outcome.kind === 'response'
            ? responseLine(batchId, customId, outcome.statusCode, outcome.requestId, outcome.body)
            : errorLine(batchId, customId, outcome.code, outcome.message),
        );
        t.failed++;
      }
      t.done.add(customId);
    }
  };
}
