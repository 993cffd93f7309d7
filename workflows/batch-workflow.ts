import {
  ActivityCancellationType,
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  patched,
  proxyActivities,
  type RetryPolicy,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  canMove,
  INITIAL_STATUS,
  isCancellable,
  transition,
  type BatchStatus,
} from '../src/batches/lifecycle';
import {
  BATCH_GONE,
  cancelUpdate,
  progressQuery,
  SA_MODEL,
  SA_STATUS,
  type BatchWorkflowInput,
  type Chunk,
  type MissingLine,
  type ValidationResult,
} from '../src/contract/batch-workflow';
import { literalMarkdown } from '../src/shared/markdown';
import type { BatchError } from '../src/shared/openai';

const UNLIMITED: RetryPolicy = {
  initialInterval: '1s',
  backoffCoefficient: 2,
  maximumInterval: '30s',
  // The worker refuses to send a result over Temporal's size limit, retryably; the same input gives the same
  // result, so retrying would keep the batch unfinished forever. It fails the batch instead (see failRun).
  nonRetryableErrorTypes: ['PayloadsTooLarge'],
};

const { setStatus, cleanupBatch } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: UNLIMITED,
});
const { validateInput, finalizeBatch } = proxyActivities<Activities>({
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '2 minutes',
  retry: UNLIMITED,
});
// Waiting for a MAX_CONCURRENT_BATCHES slot is a retry loop of this activity (it sets its own next delay).
const { admitBatch } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { ...UNLIMITED, maximumInterval: '10s' },
  cancellationType: ActivityCancellationType.TRY_CANCEL,
});

const FINAL_STATUS_AFTER_HANDLERS = 'final-status-after-handlers';

const MISSING: Record<'cancelled' | 'expired' | 'failed' | 'broken', MissingLine> = {
  cancelled: {
    code: 'batch_cancelled',
    message: 'This request was not executed because the batch was cancelled.',
  },
  expired: {
    code: 'batch_expired',
    message: 'This request could not be executed before the completion window expired.',
  },
  failed: { code: 'internal_error', message: 'This request could not be processed after repeated attempts.' },
  broken: { code: 'batch_failed', message: 'This request was not executed because the batch failed.' },
};

/** Why a batch failed outside its normal path, for its owner; the details go to the workflow's log. */
const BROKEN: BatchError = {
  code: 'batch_failed',
  message: 'The batch stopped because of an internal error.',
  param: null,
  line: null,
};

/** An error and its causes on one line, for the log. */
const explain = (err: unknown): string =>
  err instanceof Error ? [err.message, ...(err.cause ? [explain(err.cause)] : [])].join(': ') : String(err);

/** validateInput found no batch awaiting this run (see BATCH_GONE). */
const isBatchGone = (err: unknown) =>
  err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === BATCH_GONE;

/**
 * One batch: validate the input file, wait for a batch slot, run its chunks in a sliding window, then join the
 * results. Cancellation (API or Temporal UI) and the completion window both stop the work the same way; the
 * results gathered so far are always kept. Any other way out of that path (an activity failing for good, a bug)
 * still ends the batch, as failed with a reason.
 */
export async function batchWorkflow(input: BatchWorkflowInput): Promise<BatchStatus> {
  const { batchId } = input;
  let status: BatchStatus = INITIAL_STATUS;
  let plan: Extract<ValidationResult, { ok: true }> | null = null;
  let validationErrors: BatchError[] | null = null;
  let stopReason: 'cancelled' | 'expired' | null = null;
  let chunksDone = 0;
  let finalizeStarted = false;
  const done = new Set<number>();
  const work = new CancellationScope();

  const report = () =>
    setCurrentDetails(
      plan
        ? `**${status}**: ${chunksDone} of ${plan.chunks.length} chunks done (${plan.total} requests, model ${literalMarkdown(plan.model)})`
        : `**${status}**`,
    );
  /** Moves this workflow's own status (the lifecycle refuses an illegal move) and shows it in the Web UI. */
  const move = (next: BatchStatus) => {
    status = transition(status, next);
    upsertSearchAttributes([{ key: SA_STATUS, value: next }]);
    report();
  };
  /** Moves the status and records it: the batch row changes only through the setStatus activity. */
  const enter = async (next: BatchStatus, extra: { errors?: BatchError[] } = {}) => {
    move(next);
    await CancellationScope.nonCancellable(() => setStatus({ batchId, status: next, ...extra }));
  };

  setHandler(progressQuery, () => ({
    status,
    total: plan?.total ?? 0,
    chunks: plan?.chunks.length ?? 0,
    chunksDone,
  }));
  setHandler(
    cancelUpdate,
    async () => {
      if (stopReason === null) {
        stopReason = 'cancelled';
        work.cancel();
        await enter('cancelling');
      }
      return status;
    },
    {
      validator: () => {
        if (!isCancellable(status) && status !== 'cancelling')
          throw new Error(`Cannot cancel a batch whose status is ${status}.`);
      },
    },
  );

  const expiry = new CancellationScope();
  void expiry
    .run(() => sleep(Math.max(0, input.expiresAtMs - Date.now())))
    .then(
      () => {
        if (stopReason === null && status !== 'finalizing') {
          stopReason = 'expired';
          work.cancel();
        }
      },
      () => undefined,
    );

  report();
  let fault: unknown = null;
  try {
    await work.run(async () => {
      const result = await validateInput({
        batchId,
        inputFileId: input.inputFileId,
        endpoint: input.endpoint,
      });
      if (!result.ok) {
        validationErrors = result.errors;
        return;
      }
      plan = result;
      upsertSearchAttributes([{ key: SA_MODEL, value: result.model }]);
      await setStatus({ batchId, status, total: result.total, model: result.model });
      // Histories recorded before admission answered carry no result: those batches were admitted.
      if ((await admitBatch({ batchId })) === false) {
        // The batch stopped waiting without this workflow (ended through the API): nothing is left to run.
        if (stopReason === null) {
          stopReason = 'cancelled';
          await enter('cancelling');
        }
        return;
      }
      move('in_progress'); // recorded by the admission itself
      await runChunks(input, result, done, () => {
        chunksDone++;
        report();
      });
    });
  } catch (err) {
    if (!isCancellation(err)) fault = err;
    else if (stopReason === null) {
      stopReason = 'cancelled'; // cancelled from outside, e.g. the Temporal Web UI
      // Through `cancelling`, like a cancel from the API; runs that started before this change skipped it.
      if (patched('external-cancel-records-cancelling')) await enter('cancelling');
    }
  }
  // Started after the API gave up on the batch (or failed it for want of a run): nothing to record or clean.
  if (isBatchGone(fault)) throw fault;

  /** Joins the chunks' part files into the result files: every input line ends in exactly one of them. */
  const finalize = (finished: NonNullable<typeof plan>, missing: MissingLine) => {
    finalizeStarted = true;
    const incomplete = finished.chunks.filter((c) => !done.has(c.index)).map((c) => c.index);
    return finalizeBatch({
      batchId,
      inputFileId: input.inputFileId,
      chunks: finished.chunks,
      incomplete,
      missing: incomplete.length ? missing : null,
    });
  };

  /** The normal end: the result files, the final status, the scratch state. */
  const finish = async (): Promise<BatchStatus> => {
    if (validationErrors) {
      await enter('failed', { errors: validationErrors });
      return 'failed';
    }
    const outcome: BatchStatus = stopReason ?? 'completed';
    if (plan) {
      if (outcome === 'completed') await enter('finalizing');
      await finalize(plan, MISSING[stopReason ?? 'failed']);
    }
    // A cancel update may still be recording `cancelling` (retrying a failed write): the final status must come
    // after it, or the store refuses it and the batch stays `cancelling`. Inside this non-cancellable scope, as
    // after a cancel from outside a wait in the root scope ends the run as cancelled instead of returning.
    if (patched(FINAL_STATUS_AFTER_HANDLERS)) await condition(allHandlersFinished);
    await enter(outcome);
    await cleanupBatch({ batchId });
    return outcome;
  };

  /**
   * The normal path broke: an activity failed for good (a non-retryable error, a result over Temporal's size
   * limit) or the code threw. The batch still ends, as failed, keeping every result gathered so far. If this
   * fails too, the run fails, and the API fails the batch once it sees the run closed.
   */
  const failRun = async (err: unknown): Promise<BatchStatus> => {
    log.error('The batch failed outside its normal path', { batchId, error: explain(err) });
    // Already final: what broke came after the final status, or was recording it (the API reconciles that).
    if (!canMove(status, 'failed')) return status;
    if (plan && !finalizeStarted) {
      await finalize(plan, MISSING.broken).catch((e: unknown) =>
        log.error('The results of a failed batch could not be joined', { batchId, error: explain(e) }),
      );
    }
    await condition(allHandlersFinished);
    await enter('failed', { errors: [BROKEN] });
    await cleanupBatch({ batchId });
    return 'failed';
  };

  const outcome = await CancellationScope.nonCancellable(async () => {
    expiry.cancel();
    if (fault === null) {
      try {
        return await finish();
      } catch (err) {
        fault = err;
      }
    }
    return failRun(fault);
  });
  // Runs started before the patch waited here.
  if (!patched(FINAL_STATUS_AFTER_HANDLERS)) await condition(allHandlersFinished);
  return outcome;
}

/** Runs chunk activities, at most `plan.window` at once; a chunk that exhausts its retries is left incomplete. */
async function runChunks(
  input: BatchWorkflowInput,
  plan: { chunks: Chunk[]; window: number; heartbeatTimeoutSeconds: number },
  done: Set<number>,
  onSettled: () => void,
): Promise<void> {
  const { processChunk } = proxyActivities<Activities>({
    startToCloseTimeout: '24 hours',
    heartbeatTimeout: `${plan.heartbeatTimeoutSeconds} seconds`,
    // The default, TRY_CANCEL, would let finalization start while requests are still being written.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 20 },
  });
  let running = 0;
  const pending: Promise<void>[] = [];
  try {
    for (const chunk of plan.chunks) {
      await condition(() => running < plan.window);
      running++;
      const p = processChunk({
        batchId: input.batchId,
        owner: input.owner,
        inputFileId: input.inputFileId,
        endpoint: input.endpoint,
        chunk,
        // Arguments are not compared on replay: histories recorded before priorities replay unchanged.
        priority: input.priority ?? 'normal',
        deadlineMs: input.expiresAtMs,
      })
        .then(
          () => void done.add(chunk.index),
          () => undefined, // cancelled or out of retries: finalization reports its unanswered lines
        )
        .finally(() => {
          running--;
          onSettled();
        });
      pending.push(p);
    }
  } finally {
    // Every chunk must have stopped writing its part files before finalization reads them.
    await Promise.all(pending);
  }
}
