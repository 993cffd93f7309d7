import { BATCH_PRIORITIES, type BatchPriority } from '../src/shared/openai';

/** How a key (a batch) is served against the others: its priority, then its deadline within the priority. */
export interface KeyClass {
  /** `normal` when absent. */
  priority?: BatchPriority;
  /** Unix milliseconds at which the batch's completion window closes; none sorts last. */
  deadlineMs?: number;
}

/**
 * The priorities' shares of the slots while they all wait: high 8 : normal 4 : low 1. So a low-priority batch is
 * never starved: its priority gets at least 1/13 of the slots granted (1/9 against high alone, 1/5 against normal
 * alone), split evenly between the low batches waiting. Shares go to priorities, not batches, so many high
 * batches do not shrink low's share.
 */
export const PRIORITY_WEIGHTS: Record<BatchPriority, number> = { high: 8, normal: 4, low: 1 };
/** Divisible by every weight, so passes stay integers. */
const STRIDE = 8;

interface Waiter {
  order: number;
  grant: () => void;
}

interface KeyQueue {
  waiters: Waiter[];
  priority: BatchPriority;
  deadlineMs: number;
  /** Grants so far, counted from the priority's virtual time when the key began waiting. */
  pass: number;
  /** When the key began waiting: the last tie-break, which keeps equal keys round-robin. */
  seq: number;
}

interface Tier {
  /** Stride scheduling's pass: grows by STRIDE / weight per grant; the lowest among waiting priorities goes next. */
  pass: number;
  /** The pass of the key this priority served last: a key starting to wait joins after it. */
  served: number;
}

/**
 * A counting semaphore whose waiters are grouped by key (a batch id), shared between keys in two levels:
 * - between priorities, by stride scheduling with PRIORITY_WEIGHTS (weighted fair sharing of the grants);
 * - within a priority, evenly between its keys, earliest deadline first in each round (then the key that began
 *   waiting first), so keys with the same class and deadline are served round-robin.
 * A priority or key that starts waiting joins at the current virtual time: idling banks no credit.
 * Within a key, lower `order` (the chunk's index) goes first: a batch's chunks then finish one after another, so
 * its window refills continuously instead of all chunks finishing, and waiting for new ones, at once.
 */
export class FairLimiter {
  private inUse = 0;
  private readonly queues = new Map<string, KeyQueue>();
  private readonly tiers = Object.fromEntries(
    BATCH_PRIORITIES.map((p) => [p, { pass: 0, served: 0 }]),
  ) as Record<BatchPriority, Tier>;
  /** The pass of the priority served last: where a priority starting to wait joins. */
  private served = 0;
  private seq = 0;

  private capacity: number;

  /** `onGrant` hears of every slot given (the adaptive limit counts the requests that measure it). */
  constructor(
    capacity: number,
    private readonly onGrant: () => void = () => undefined,
  ) {
    this.capacity = FairLimiter.atLeastOne(capacity);
  }

  private static atLeastOne(n: number): number {
    return Number.isFinite(n) ? Math.max(1, Math.floor(n)) : 1;
  }

  get active(): number {
    return this.inUse;
  }

  get waiting(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.waiters.length;
    return n;
  }

  get limit(): number {
    return this.capacity;
  }

  /** Changing the limit takes effect as permits are released (or at once, when raised). */
  setLimit(capacity: number): void {
    this.capacity = FairLimiter.atLeastOne(capacity);
    this.dispatch();
  }

  /**
   * Resolves with a release function once a slot is free; rejects if `signal` aborts first. `cls` is read when
   * the key begins waiting (a batch's class does not change); without it the key is `normal` with no deadline.
   */
  acquire(key: string, signal?: AbortSignal, order = 0, cls: KeyClass = {}): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve(this.releaser());
      };
      const onAbort = () => {
        const q = this.queues.get(key);
        const i = q?.waiters.findIndex((w) => w.grant === grant) ?? -1;
        if (q && i >= 0) {
          q.waiters.splice(i, 1);
          if (q.waiters.length === 0) this.queues.delete(key);
        }
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const { waiters } = this.queues.get(key) ?? this.join(key, cls);
      // After every waiter of the same or lower order: FIFO within an order.
      let at = waiters.length;
      while (at > 0 && waiters[at - 1].order > order) at--;
      waiters.splice(at, 0, { order, grant });
      this.dispatch();
    });
  }

  private join(key: string, { priority = 'normal', deadlineMs }: KeyClass): KeyQueue {
    const tier = this.tiers[priority];
    if (!this.isWaiting(priority)) tier.pass = Math.max(tier.pass, this.served);
    const q: KeyQueue = {
      waiters: [],
      priority,
      deadlineMs: deadlineMs ?? Infinity,
      // Behind the keys still to be served in this round: a key that just ran dry and waits again gains nothing.
      pass: tier.served + 1,
      seq: this.seq++,
    };
    this.queues.set(key, q);
    return q;
  }

  private isWaiting(priority: BatchPriority): boolean {
    for (const q of this.queues.values()) if (q.priority === priority) return true;
    return false;
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inUse--;
      this.dispatch();
    };
  }

  /** The key served next: the lowest-pass priority, then within it the lowest pass, deadline, and seq. */
  private next(): [string, KeyQueue] | null {
    const best = new Map<BatchPriority, [string, KeyQueue]>();
    for (const entry of this.queues) {
      const b = best.get(entry[1].priority);
      if (!b || compareKeys(entry[1], b[1]) < 0) best.set(entry[1].priority, entry);
    }
    let chosen: [string, KeyQueue] | null = null;
    // In priority order, so a tie of passes goes to the higher priority.
    for (const p of BATCH_PRIORITIES) {
      const entry = best.get(p);
      if (entry && (!chosen || this.tiers[p].pass < this.tiers[chosen[1].priority].pass)) chosen = entry;
    }
    return chosen;
  }

  private dispatch(): void {
    while (this.inUse < this.capacity) {
      const next = this.next();
      if (!next) return;
      const [key, q] = next;
      const tier = this.tiers[q.priority];
      const { grant } = q.waiters.shift()!;
      tier.served = q.pass++;
      this.served = tier.pass;
      tier.pass += STRIDE / PRIORITY_WEIGHTS[q.priority];
      if (q.waiters.length === 0) this.queues.delete(key);
      this.inUse++;
      this.onGrant();
      grant();
    }
  }
}

// Deadlines may be Infinity, which subtraction would turn into NaN.
const compareKeys = (a: KeyQueue, b: KeyQueue) =>
  a.pass - b.pass ||
  (a.deadlineMs < b.deadlineMs ? -1 : a.deadlineMs > b.deadlineMs ? 1 : 0) ||
  a.seq - b.seq;
