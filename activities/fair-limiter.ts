/**
 * A counting semaphore whose waiters are grouped by key (a batch id) and served round-robin across keys,
 * so MAX_WORKERS upstream slots are shared fairly among the batches running on this worker. Within a key,
 * lower `priority` (the chunk's index) goes first: a batch's chunks then finish one after another, so its
 * window refills continuously instead of all chunks finishing, and waiting for new ones, at once.
 */
export class FairLimiter {
  private inUse = 0;
  private readonly queues = new Map<string, Array<{ priority: number; grant: () => void }>>();
  /** Keys with waiters, in the order they will next be served. */
  private ring: string[] = [];

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
    for (const q of this.queues.values()) n += q.length;
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

  /** Resolves with a release function once a slot is free; rejects if `signal` aborts first. */
  acquire(key: string, signal?: AbortSignal, priority = 0): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve(this.releaser());
      };
      const onAbort = () => {
        const q = this.queues.get(key);
        const i = q?.findIndex((w) => w.grant === grant) ?? -1;
        if (q && i >= 0) {
          q.splice(i, 1);
          if (q.length === 0) this.dropKey(key);
        }
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      let q = this.queues.get(key);
      if (!q) {
        q = [];
        this.queues.set(key, q);
        this.ring.push(key);
      }
      // After every waiter of the same or higher priority: FIFO within a priority.
      let at = q.length;
      while (at > 0 && q[at - 1].priority > priority) at--;
      q.splice(at, 0, { priority, grant });
      this.dispatch();
    });
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

  private dropKey(key: string): void {
    this.queues.delete(key);
    this.ring = this.ring.filter((k) => k !== key);
  }

  private dispatch(): void {
    while (this.inUse < this.capacity && this.ring.length > 0) {
      const key = this.ring.shift()!;
      const q = this.queues.get(key)!;
      const { grant } = q.shift()!;
      if (q.length > 0) this.ring.push(key);
      else this.queues.delete(key);
      this.inUse++;
      this.onGrant();
      grant();
    }
  }
}
