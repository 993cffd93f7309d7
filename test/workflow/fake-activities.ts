// Fake activities for workflow tests: the real `Activities` shape over an in-memory batch store, each call
// recorded; a test replaces the behaviour it is about (the plan, one chunk, finalization).
import { Context } from '@temporalio/activity';
import { ApplicationFailure, ApplicationFailureCategory, CancelledFailure } from '@temporalio/common';
import type { Activities } from '../../activities';
import type { ProcessChunkInput, SetStatusInput, ValidationResult } from '../../src/contract/batch-workflow';
import type { FakeBatchStore } from './fake-batch-store';

type ActivityName = keyof Activities;

/** Every call's input, by activity, in call order. */
export type Calls = { [K in ActivityName]: Parameters<Activities[K]>[0][] };

export interface FakeBehaviour {
  /** What validation answers; by default a good file of three chunks run two at a time. */
  validation?: ValidationResult;
  /** One attempt at a status write; by default it moves the batch in the store. */
  setStatus?: Activities['setStatus'];
  /** One attempt at one chunk; by default it answers every line at once. */
  processChunk?: Activities['processChunk'];
  /** One attempt at finalization; by default it succeeds. */
  finalizeBatch?: Activities['finalizeBatch'];
}

export interface FakeActivities {
  activities: Activities;
  calls: Calls;
  /** What happened, in order: `setStatus cancelling`, `processChunk 1`, `processChunk 1 cancelled`, ... */
  timeline: string[];
}

/** A good file's plan: `chunks` chunks of ten lines, `window` at a time. */
export function goodPlan(chunks: number, window: number): Extract<ValidationResult, { ok: true }> {
  return {
    ok: true,
    total: chunks * 10,
    model: 'fake-model',
    chunks: Array.from({ length: chunks }, (_, index) => ({
      index,
      start: index * 1000,
      end: (index + 1) * 1000,
      lines: 10,
    })),
    window,
    heartbeatTimeoutSeconds: 10,
  };
}

/**
 * A chunk that keeps working until the workflow cancels it. It heartbeats, since a cancellation reaches an
 * activity only in the answer to a heartbeat, and ends as cancelled, as the real chunk runner does.
 */
export async function workUntilCancelled(): Promise<never> {
  const ctx = Context.current();
  const beat = setInterval(() => ctx.heartbeat(), 50);
  try {
    return await ctx.cancelled;
  } finally {
    clearInterval(beat);
  }
}

export function fakeActivities(store: FakeBatchStore, behaviour: FakeBehaviour = {}): FakeActivities {
  const notUsed = async (): Promise<never> => {
    throw new Error('not an activity of the batch workflow');
  };
  const impl: Activities = {
    validateInput: async () => behaviour.validation ?? goodPlan(3, 2),
    setStatus:
      behaviour.setStatus ?? (async ({ batchId, status, total }) => store.move(batchId, status, { total })),
    admitBatch: async ({ batchId }) => {
      const outcome = store.admit(batchId);
      if (outcome !== 'queued') return outcome === 'admitted';
      // As the real activity: waiting for a slot is a retry loop (a short delay keeps the tests quick).
      throw ApplicationFailure.create({
        type: 'BatchQueued',
        message: 'waiting for a slot',
        nextRetryDelay: '100ms',
        category: ApplicationFailureCategory.BENIGN,
      });
    },
    processChunk: behaviour.processChunk ?? (async ({ chunk }) => ({ completed: chunk.lines, failed: 0 })),
    finalizeBatch:
      behaviour.finalizeBatch ??
      (async ({ chunks, incomplete }) => ({
        completed: chunks.filter((c) => !incomplete.includes(c.index)).reduce((n, c) => n + c.lines, 0),
        failed: 0,
        outputFileId: 'file-output',
        errorFileId: incomplete.length ? 'file-errors' : null,
      })),
    cleanupBatch: async () => undefined,
    deleteExpiredFiles: notUsed,
    sweepScratch: notUsed,
    planWebhookDeliveries: notUsed,
    deliverWebhook: notUsed,
    markWebhookFailed: notUsed,
  };
  return recorded(impl);
}

function label(name: ActivityName, input: unknown): string {
  if (name === 'setStatus') return `setStatus ${(input as SetStatusInput).status}`;
  if (name === 'processChunk') return `processChunk ${(input as ProcessChunkInput).chunk.index}`;
  return name;
}

/** Wraps every activity to record its input and, when it ends cancelled, that it did. */
function recorded(impl: Activities): FakeActivities {
  const names = Object.keys(impl) as ActivityName[];
  const calls = Object.fromEntries(names.map((name) => [name, []])) as unknown as Calls;
  const timeline: string[] = [];
  const wrapped = names.map((name) => {
    const run = impl[name] as (input: unknown) => Promise<unknown>;
    const fn = async (input: unknown) => {
      (calls[name] as unknown[]).push(input);
      const what = label(name, input);
      timeline.push(what);
      try {
        return await run(input);
      } catch (err) {
        if (err instanceof CancelledFailure) timeline.push(`${what} cancelled`);
        throw err;
      }
    };
    return [name, fn];
  });
  return { activities: Object.fromEntries(wrapped) as Activities, calls, timeline };
}
