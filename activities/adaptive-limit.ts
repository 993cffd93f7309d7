/** Latency differences smaller than this are noise. */
const MIN_QUEUEING_MS = 5;
/** Answers a window needs before its mean latency says anything. */
const MIN_SAMPLES = 5;

export interface AdaptiveLimitOptions {
  initial: number;
  max: number;
  /** Called whenever the limit changes. */
  onChange: (limit: number) => void;
  /** Latency above `minRtt × queueing` means requests wait in the upstream's queue (default 1.5). */
  queueing?: number;
  /** Latency above `minRtt × overload` is a blow-up: back off (default 2). */
  overload?: number;
}

/**
 * Finds and holds the upstream's best concurrency, the way TCP finds a link's: additive increase while
 * throughput can still rise (demand exceeds the limit and latency stays near its floor), multiplicative decrease
 * on 429/503/timeouts or when latency blows up. Starts with a doubling phase so a cold start is quick.
 *
 * A vLLM server serves up to max_num_seqs requests at once at roughly constant latency and queues the rest,
 * so latency rising above its floor is the sign that more concurrency only adds waiting, not throughput.
 */
export class AdaptiveLimit {
  private value: number;
  private slowStart = true;
  private readonly history: number[] = [];
  private sum = 0;
  private count = 0;
  private overloaded = false;
  private last: { limit: number; samples: number } | null = null;
  private readonly queueing: number;
  private readonly min: number;
  private readonly overload: number;

  constructor(private readonly opts: AdaptiveLimitOptions) {
    this.value = Math.max(1, Math.min(opts.max, opts.initial));
    // Never below the start: a pool smaller than that only queues a little, and a limit that sank to 1 on a
    // misread latency would starve the batch (the benchmark caught exactly that).
    this.min = this.value;
    this.queueing = opts.queueing ?? 1.5;
    this.overload = opts.overload ?? 2;
  }

  get limit(): number {
    return this.value;
  }

  /** One finished upstream attempt. */
  record(sample: { latencyMs: number; overloaded: boolean }): void {
    if (sample.overloaded) this.overloaded = true;
    else {
      this.sum += sample.latencyMs;
      this.count++;
    }
  }

  /**
   * Closes a measurement window. `demand` says whether requests were waiting for a slot: without it, a good
   * latency is no evidence that more concurrency would help.
   */
  tick(demand: boolean): void {
    const overloaded = this.overloaded;
    const samples = this.count;
    // A window closes only with enough answers in it: at a low limit it spans several ticks, so the limit can
    // always climb back (a window that never filled once kept a limit of 1 stuck there for good).
    if (!overloaded && samples < MIN_SAMPLES) return;
    const rtt = this.sum / samples;
    this.sum = 0;
    this.count = 0;
    this.overloaded = false;
    const previous = this.last;
    this.last = { limit: this.value, samples };
    if (overloaded) {
      this.slowStart = false;
      return this.set(this.value * 0.7);
    }
    // The floor is the lowest window mean of the last 240 windows (a minute at 250 ms), so it follows a changing
    // request mix without creeping up while the limit sits at the knee.
    this.history.push(rtt);
    if (this.history.length > 240) this.history.shift();
    const floor = Math.min(...this.history);
    const knee = this.value * (floor / rtt); // the concurrency at which this latency would be back at its floor
    // Below a few milliseconds, differences are this process's own event-loop jitter, not the upstream queueing.
    const above = (factor: number) => rtt > floor * factor && rtt - floor > MIN_QUEUEING_MS;
    if (above(this.overload)) {
      this.slowStart = false;
      // Gently: a floor measured on a burst of short requests can make latency look worse than it is.
      return this.set(Math.max(knee, this.value * 0.8));
    }
    if (!demand) return;
    if (!above(this.queueing)) return this.set(this.grow());
    // Latency is rising. On a GPU that is still worth it while throughput rises with it; once it does not,
    // requests only wait in the server's queue: hold. Waiting there costs latency, never throughput, so the
    // limit errs on the high side and only a real blow-up (above) or 429/503 brings it down.
    this.slowStart = false;
    const risen = previous !== null && this.value > previous.limit && samples > previous.samples * 1.05;
    if (risen) this.set(this.grow());
  }

  private grow(): number {
    return this.slowStart ? this.value * 2 : this.value + Math.max(1, Math.round(Math.sqrt(this.value) / 2));
  }

  private set(next: number): void {
    const clamped = Math.max(this.min, Math.min(this.opts.max, Math.round(next)));
    if (clamped === this.value) return;
    this.value = clamped;
    this.opts.onChange(clamped);
  }
}
