import {
  ActivityCancellationType,
  allHandlersFinished,
  CancellationScope,
  condition,
  isCancellation,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { INITIAL_STATUS, isCancellable, transition, type BatchStatus } from '../src/batches/lifecycle';
import {
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

const UNLIMITED = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' } as const;

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

const MISSING: Record<'cancelled' | 'expired' | 'failed', MissingLine> = {
  cancelled: {
    code: 'batch_cancelled',
    message: 'This request was not executed because the batch was cancelled.',
  },
  expired: {
    code: 'batch_expired',
    message: 'This request could not be executed before the completion window expired.',
  },
  failed: { code: 'internal_error', message: 'This request could not be processed after repeated attempts.' },
};

/**
 * One batch: validate the input file, wait for a batch slot, run its chunks in a sliding window, then join the
 * results. Cancellation (API or Temporal UI) and the completion window both stop the work the same way; the
 * results gathered so far are always kept.
 */
export async function batchWorkflow(input: BatchWorkflowInput): Promise<BatchStatus> {
  const { batchId } = input;
  let status: BatchStatus = INITIAL_STATUS;
  let plan: Extract<ValidationResult, { ok: true }> | null = null;
  let validationErrors: BatchError[] | null = null;
  let stopReason: 'cancelled' | 'expired' | null = null;
  let chunksDone = 0;
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
  try {
    await work.run(async () => {
      const result = await validateInput({ inputFileId: input.inputFileId, endpoint: input.endpoint });
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
    if (!isCancellation(err)) throw err;
    if (stopReason === null) {
      stopReason = 'cancelled'; // cancelled from outside, e.g. the Temporal Web UI
      // Through `cancelling`, like a cancel from the API; runs that started before this change skipped it.
      if (patched('external-cancel-records-cancelling')) await enter('cancelling');
    }
  }

  const outcome: BatchStatus = stopReason ?? (validationErrors ? 'failed' : 'completed');
  await CancellationScope.nonCancellable(async () => {
    expiry.cancel();
    if (validationErrors) {
      await enter('failed', { errors: validationErrors });
      return;
    }
    const finished = plan;
    if (finished) {
      if (outcome === 'completed') await enter('finalizing');
      const incomplete = finished.chunks.filter((c) => !done.has(c.index)).map((c) => c.index);
      await finalizeBatch({
        batchId,
        inputFileId: input.inputFileId,
        chunks: finished.chunks,
        incomplete,
        missing: incomplete.length ? MISSING[stopReason ?? 'failed'] : null,
      });
    }
    // A cancel update may still be recording `cancelling` (retrying a failed write): the final status must come
    // after it, or the store refuses it and the batch stays `cancelling`. Inside this non-cancellable scope, as
    // after a cancel from outside a wait in the root scope ends the run as cancelled instead of returning.
    if (patched(FINAL_STATUS_AFTER_HANDLERS)) await condition(allHandlersFinished);
    await enter(outcome);
    await cleanupBatch({ batchId });
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
