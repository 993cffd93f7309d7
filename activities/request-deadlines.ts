/** What a deadline ends: one attempt of a request. */
export interface Abortable {
  abort(reason: Error): void;
}

/** Deadlines this close together share a timer: a request may run up to this much past its timeout. */
export const DEADLINE_SLACK_MS = 100;

interface Bucket {
  at: number;
  timer: NodeJS.Timeout;
  members: Set<Tracked>;
}

interface Group {
  signal: AbortSignal;
  onAbort: () => void;
  members: Set<Tracked>;
}

/** A request being bounded; hand it back to `end`. */
export interface Tracked {
  readonly request: Abortable;
  readonly bucket: Bucket | null;
  readonly group: Group | null;
}

/**
 * Ends requests when their timeout has passed (as a TimeoutError, like AbortSignal.timeout) or at once when their
 * signal aborts (with its reason). Requests whose deadlines fall in the same DEADLINE_SLACK_MS share one timer,
 * and the requests of one signal share one abort listener: an AbortSignal.timeout and an AbortSignal.any per
 * request cost more CPU than the rest of a request's handling on a fast upstream.
 */
export class RequestDeadlines {
  private readonly buckets = new Map<number, Bucket>();
  private readonly groups = new Map<AbortSignal, Group>();

  constructor(private readonly timeoutMs: number) {}

  /** Starts bounding `request`; it is aborted at once when `signal` already is. */
  start(request: Abortable, signal: AbortSignal): Tracked {
    if (signal.aborted) {
      request.abort(signal.reason as Error);
      return { request, bucket: null, group: null };
    }
    // performance.now() is monotonic: a wall-clock step cannot put a request in a bucket due earlier.
    const now = performance.now();
    const at = Math.ceil((now + this.timeoutMs) / DEADLINE_SLACK_MS);
    let bucket = this.buckets.get(at);
    if (!bucket) {
      const members = new Set<Tracked>();
      const timer = setTimeout(() => this.expire(at, members), at * DEADLINE_SLACK_MS - now);
      bucket = { at, timer, members };
      this.buckets.set(at, bucket);
    }
    let group = this.groups.get(signal);
    if (!group) {
      const members = new Set<Tracked>();
      const onAbort = () => {
        for (const t of [...members]) t.request.abort(signal.reason as Error);
      };
      group = { signal, onAbort, members };
      signal.addEventListener('abort', onAbort);
      this.groups.set(signal, group);
    }
    const tracked: Tracked = { request, bucket, group };
    bucket.members.add(tracked);
    group.members.add(tracked);
    return tracked;
  }

  /** Stops bounding a request that has settled, and drops its timer and listener once nothing else uses them. */
  end(tracked: Tracked): void {
    const { bucket, group } = tracked;
    if (
      bucket?.members.delete(tracked) &&
      bucket.members.size === 0 &&
      this.buckets.get(bucket.at) === bucket
    ) {
      clearTimeout(bucket.timer);
      this.buckets.delete(bucket.at);
    }
    if (
      group?.members.delete(tracked) &&
      group.members.size === 0 &&
      this.groups.get(group.signal) === group
    ) {
      group.signal.removeEventListener('abort', group.onAbort);
      this.groups.delete(group.signal);
    }
  }

  private expire(at: number, members: Set<Tracked>): void {
    this.buckets.delete(at);
    const reason = new DOMException(`The request did not finish within ${this.timeoutMs} ms`, 'TimeoutError');
    for (const t of [...members]) t.request.abort(reason);
  }
}
