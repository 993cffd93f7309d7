// The batch lifecycle, in one place: statuses, their groups, the legal moves and the timestamp each status
// stamps. Pure (no I/O, no Node built-ins): the workflow, the activities, the API, the dashboard and SQL all
// build their checks from these constants.
import { BATCH_STATUSES, type BatchStatus } from '../shared/openai';

export { BATCH_STATUSES, type BatchStatus };

/** Every batch starts here: the API creates it in this status before its workflow starts. */
export const INITIAL_STATUS = 'validating' satisfies BatchStatus;

/** Final: nothing moves a batch out of these. */
export const TERMINAL_STATUSES = [
  'completed',
  'failed',
  'expired',
  'cancelled',
] as const satisfies readonly BatchStatus[];

/** Not final yet: the batch's workflow still owns it (and its input file is in use). */
export const UNFINISHED_STATUSES = BATCH_STATUSES.filter(
  (s) => !(TERMINAL_STATUSES as readonly BatchStatus[]).includes(s),
);

/** Admitted and not final: these hold one of MAX_CONCURRENT_BATCHES slots (`cancelling` only once admitted). */
export const RUNNING_STATUSES = [
  'in_progress',
  'finalizing',
  'cancelling',
] as const satisfies readonly BatchStatus[];

/** Chunks of a batch in these statuses must stop sending: it is being cancelled, or it already ended. */
export const HALTED_STATUSES = ['cancelling', ...TERMINAL_STATUSES] as const satisfies readonly BatchStatus[];

/** A cancel request moves these to `cancelling`; a batch already `cancelling` answers as it is. */
export const CANCELLABLE_STATUSES = ['validating', 'in_progress'] as const satisfies readonly BatchStatus[];

/**
 * The legal moves. Any unfinished batch may fail (its workflow ended outside its normal path); expiry stops a
 * batch before finalization, so an expired batch never passes through `finalizing`.
 */
const NEXT: Record<BatchStatus, readonly BatchStatus[]> = {
  validating: ['in_progress', 'cancelling', 'expired', 'failed'],
  in_progress: ['finalizing', 'cancelling', 'expired', 'failed'],
  finalizing: ['completed', 'failed'],
  cancelling: ['cancelled', 'failed'],
  completed: [],
  failed: [],
  expired: [],
  cancelled: [],
};

/** The batch field each status stamps with the time it was entered (`validating` is stamped by `created_at`). */
export const STAMP = {
  validating: null,
  in_progress: 'inProgressAt',
  finalizing: 'finalizingAt',
  completed: 'completedAt',
  failed: 'failedAt',
  expired: 'expiredAt',
  cancelling: 'cancellingAt',
  cancelled: 'cancelledAt',
} as const satisfies Record<BatchStatus, string | null>;

export type StampField = NonNullable<(typeof STAMP)[BatchStatus]>;

const among = (group: readonly BatchStatus[]) => (s: BatchStatus) => group.includes(s);
export const isTerminal = among(TERMINAL_STATUSES);
export const isUnfinished = among(UNFINISHED_STATUSES);
export const isCancellable = among(CANCELLABLE_STATUSES);
export const isBatchStatus = (s: unknown): s is BatchStatus =>
  (BATCH_STATUSES as readonly unknown[]).includes(s);

export const canMove = (from: BatchStatus, to: BatchStatus): boolean => NEXT[from].includes(to);

/** The statuses from which `to` may be entered: the guard of every status write. */
export const sourcesOf = (to: BatchStatus): BatchStatus[] => BATCH_STATUSES.filter((s) => canMove(s, to));

export class IllegalTransition extends Error {
  constructor(
    readonly from: BatchStatus,
    readonly to: BatchStatus,
  ) {
    super(`A batch cannot move from ${from} to ${to}.`);
    this.name = 'IllegalTransition';
  }
}

/** The one way a status changes: returns `to`, or throws when the move is not in the lifecycle. */
export function transition(from: BatchStatus, to: BatchStatus): BatchStatus {
  if (!canMove(from, to)) throw new IllegalTransition(from, to);
  return to;
}
