// What a pool recording says: when the first request arrived and the last answer left, how busy the slots
// were in between, and how long the pool idled at the end.
import type { Recording } from './pool';

/** "Busy" for the tail metric: at least this fraction of the slots serving. */
export const BUSY_THRESHOLD = 0.9;
/** The busy fraction is averaged over this window before comparing it with the threshold. */
export const BUSY_WINDOW_MS = 250;

export interface PoolSummary {
  requests: number;
  /** Epoch ms of the reading that first saw a request, and of the one that saw the last answer. */
  firstAt: number;
  lastAt: number;
  spanMs: number;
  /** Mean fraction of slots serving between firstAt and lastAt (NaN for an unlimited pool). */
  meanBusy: number;
  /** From the last moment the pool was ≥ 90% busy to the last answer (the whole span if it never was). */
  tailMs: number;
  /** From the first request to the first moment the pool was ≥ 90% busy. */
  rampMs: number;
  /** Time under 90% busy between the ramp and the tail: the pool idling mid-batch. */
  dipsMs: number;
}

/** Mean busy fraction over the `BUSY_WINDOW_MS` before each reading. */
function rollingBusy(rec: Recording, slots: number): number[] {
  const out: number[] = [];
  let from = 0;
  let sum = 0;
  for (let i = 0; i < rec.t.length; i++) {
    sum += rec.inService[i];
    while (rec.t[i] - rec.t[from] >= BUSY_WINDOW_MS) sum -= rec.inService[from++];
    out.push(sum / (i - from + 1) / slots);
  }
  return out;
}

export function summarize(rec: Recording, slots: number): PoolSummary {
  const n = rec.t.length;
  const total = rec.completed[n - 1] ?? 0;
  const first = rec.received.findIndex((r) => r > 0);
  const last = rec.completed.findIndex((c) => c >= total);
  if (first < 0 || last < 0 || total === 0) {
    const none = NaN;
    return {
      requests: 0,
      firstAt: none,
      lastAt: none,
      spanMs: none,
      meanBusy: none,
      tailMs: none,
      rampMs: none,
      dipsMs: none,
    };
  }
  const firstAt = rec.t[first];
  const lastAt = rec.t[last];
  let meanBusy = NaN;
  let tailMs = NaN;
  let rampMs = NaN;
  let dipsMs = NaN;
  if (slots > 0) {
    // Time-weighted: readings are 10 ms apart only when the event loop keeps up.
    let area = 0;
    for (let i = first + 1; i <= last; i++) area += rec.inService[i - 1] * (rec.t[i] - rec.t[i - 1]);
    meanBusy = area / Math.max(1, lastAt - firstAt) / slots;
    const busy = rollingBusy(rec, slots);
    let lastBusy = -1;
    let firstBusy = -1;
    for (let i = first; i <= last; i++) {
      if (busy[i] < BUSY_THRESHOLD) continue;
      if (firstBusy < 0) firstBusy = i;
      lastBusy = i;
    }
    tailMs = lastBusy < 0 ? lastAt - firstAt : lastAt - rec.t[lastBusy];
    rampMs = firstBusy < 0 ? lastAt - firstAt : rec.t[firstBusy] - firstAt;
    dipsMs = 0;
    for (let i = firstBusy + 1; firstBusy >= 0 && i <= lastBusy; i++)
      if (busy[i] < BUSY_THRESHOLD) dipsMs += rec.t[i] - rec.t[i - 1];
  }
  return { requests: total, firstAt, lastAt, spanMs: lastAt - firstAt, meanBusy, tailMs, rampMs, dipsMs };
}

export interface Bucket {
  /** Seconds since t0, at the bucket's start. */
  s: number;
  /** Answers per second in the bucket. */
  rate: number;
  busy: number;
}

/** Answers per second and mean busy fraction in `bucketMs` buckets from `t0` (epoch ms). */
export function buckets(rec: Recording, slots: number, t0: number, bucketMs = 250): Bucket[] {
  const out: Bucket[] = [];
  if (rec.t.length === 0) return out;
  const count = Math.ceil((rec.t[rec.t.length - 1] - t0) / bucketMs);
  let i = 0;
  let before = 0;
  for (let b = 0; b < count; b++) {
    const end = t0 + (b + 1) * bucketMs;
    let sum = 0;
    let k = 0;
    let done = before;
    while (i < rec.t.length && rec.t[i] < end) {
      if (rec.t[i] >= t0) {
        sum += rec.inService[i];
        k++;
      }
      done = rec.completed[i];
      i++;
    }
    out.push({
      s: (b * bucketMs) / 1000,
      rate: ((done - before) * 1000) / bucketMs,
      busy: slots > 0 && k > 0 ? sum / k / slots : NaN,
    });
    before = done;
  }
  return out;
}
