/** Answers a measurement waits for (fewer at a small limit, so a small pool still decides within a few latencies). */
const COHORT = 100;
const MIN_COHORT = 16;
/** A measurement's answers may straggle (a retry, a stall): it closes once this share of its cohort answered. */
const COHORT_DONE = 0.95;
/** A cohort that takes longer than this closes with what it has (at least MIN_COHORT answers). */
const COHORT_PATIENCE_MS = 15_000;
/** Above the estimated knee, a little queue keeps every slot busy between one answer and the next request. */
const HEADROOM = 1.2;
/** Growth per accepted probe, and how it accelerates while probes keep being accepted. */
const FIRST_STEP = 1.25;
const MAX_STEP = 2;
const DOWN_PROBE = 0.8;
/** How far outside what queueing explains a latency ratio may stray (request-to-request spread) and still count. */
const CONSISTENT = 1.3;
/** Server queue readings older than this are not trusted: the client-side signal takes over. */
const SERVERS_FRESH_MS = 2_000;

export interface AdaptiveLimitOptions {
  initial: number;
  max: number;
  /** Called whenever the limit changes. */
  onChange: (limit: number) => void;
  /** Milliseconds on a monotonic clock; tests pass a simulated one. */
  now?: () => number;
}

export interface LatencySample {
  latencyMs: number;
  /** 429, 503 or a timeout: the pool refused or could not keep up. */
  overloaded: boolean;
  /** The request's class (endpoint and model): latencies are compared within a class, never across. */
  key?: string;
}

/** What the pool's servers say of their own queue, summed over the servers (vLLM's /metrics). */
export interface ServerQueue {
  running: number;
  waiting: number;
}

type Means = Map<string, { sum: number; n: number }>;

interface Measurement {
  /** When the limit took its current value: a refusal of a request started since then refuses it. */
  at: number;
  /**
   * Starts still to pass before the cohort begins: a raise lets its extra requests start at once, one behind
   * another, and only the requests after that burst see the queue the new limit makes.
   */
  skip: number;
  /** When the cohort began: only requests started since then measure the limit. */
  from: number;
  /** Requests started since `from`, up to the cohort size; the cohort is the requests started until it filled. */
  started: number;
  cohort: number;
  closedAt: number;
  answered: number;
  means: Means;
  overloaded: boolean;
  /** A window without demand: the limit was not what the pool saw, so this measurement says nothing. */
  appLimited: boolean;
}

function meanOf(means: Means): number {
  let sum = 0;
  let n = 0;
  for (const m of means.values()) {
    sum += m.sum;
    n += m.n;
  }
  return n === 0 ? 0 : sum / n;
}

/**
 * How much slower `now` answered than `before`, class by class (weighted by `now`'s answers): a batch of short
 * prompts beside long ones changes the mix, not the pool's state. Classes seen only once are not compared.
 */
function latencyRatio(now: Means, before: Means): number {
  let weighted = 0;
  let n = 0;
  for (const [key, m] of now) {
    const b = before.get(key);
    if (!b || b.n === 0 || m.n === 0) continue;
    weighted += m.n * (m.sum / m.n / (b.sum / b.n));
    n += m.n;
  }
  return n === 0 ? meanOf(now) / Math.max(1e-9, meanOf(before)) : weighted / n;
}

/**
 * Finds and holds the pool's best concurrency, and follows it when the request mix changes.
 *
 * A vLLM server serves up to max_num_seqs requests at roughly constant latency and queues the rest: below that
 * knee more concurrency means proportionally more throughput at the same latency; above it, the same throughput
 * at proportionally more latency. So the limit never judges a latency against a remembered floor (a floor from
 * yesterday's fast mix made a slow mix read as overload); it only compares the answers to its own moves:
 * - a probe raises the limit by k and measures the requests started after the raise (after its own burst of
 *   new requests) against those started before, class by class. Throughput rose with it if latency stayed put;
 *   latency rising by about k means the pool only queued them, and the knee is at limit ÷ latency ratio (set,
 *   plus some headroom);
 * - probes repeat every few latencies and accelerate while accepted (a cold start doubles); after a rejected
 *   one the next probe goes down, and the limit stays down only if latency fell with it (the pool had been
 *   queueing: a mix that fits fewer sequences per GPU lowers the knee);
 * - 429/503/timeouts cut by 30 % at once;
 * - when the servers' own queue is known (vLLM's num_requests_running/waiting), it decides instead: grow while
 *   nothing waits, shrink by half this worker's share of the queue when over a tenth of the running requests
 *   wait. Several workers then split the cut, and a load balancer in front hides nothing.
 * A mix that changes moves nothing by itself: each comparison is between requests of one class started moments
 * apart, and a ratio that queueing cannot explain is discarded.
 */
export class AdaptiveLimit {
  private value: number;
  private readonly min: number;
  private readonly now: () => number;
  private startup = true;
  private step = FIRST_STEP;
  private direction: 'up' | 'down' = 'up';
  private nextProbeAt = 0;
  private baseline: { limit: number; means: Means } | null = null;
  private m: Measurement;
  private servers: (ServerQueue & { at: number }) | null = null;
  /** The limit at which the pool last refused: probes accelerate only below it (TCP's slow-start threshold). */
  private ceiling = Infinity;

  constructor(private readonly opts: AdaptiveLimitOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.value = Math.max(1, Math.min(opts.max, Math.round(opts.initial)));
    // Low enough to leave room for a small or shared pool, high enough that a misreading costs little.
    this.min = Math.min(this.value, 8);
    this.m = this.measure();
  }

  get limit(): number {
    return this.value;
  }

  /** An upstream attempt was given a slot (its latency clock starts about now). */
  started(): void {
    const m = this.m;
    if (m.skip > 0) {
      if (--m.skip === 0) m.from = this.now();
      return;
    }
    if (m.started >= m.cohort) return;
    if (++m.started === m.cohort) m.closedAt = this.now();
  }

  /** One finished upstream attempt. */
  record(sample: LatencySample): void {
    const m = this.m;
    const startedAt = this.now() - sample.latencyMs;
    // Answers to requests started before the last change measure the old limit (a 429 among them was answered).
    if (startedAt < m.at) return;
    if (sample.overloaded) {
      m.overloaded = true;
      return;
    }
    if (startedAt < m.from || startedAt > m.closedAt) return;
    const key = sample.key ?? '';
    const mean = m.means.get(key) ?? { sum: 0, n: 0 };
    mean.sum += sample.latencyMs;
    mean.n++;
    m.means.set(key, mean);
    m.answered++;
  }

  /** The servers' own queue, read from their metrics; null when they cannot be read (the client-side signal). */
  observeServers(queue: ServerQueue | null): void {
    this.servers = queue && { ...queue, at: this.now() };
  }

  /**
   * Closes a window (every 250 ms). `demand` says whether requests were waiting for a slot: without it the pool
   * saw less than the limit, so nothing is learnt.
   */
  tick(demand: boolean): void {
    const now = this.now();
    if (this.m.overloaded) {
      this.startup = false;
      this.step = FIRST_STEP;
      this.ceiling = this.value;
      return this.change(this.value * 0.7, 'up');
    }
    if (this.servers && now - this.servers.at <= SERVERS_FRESH_MS) return this.followServers(demand);
    if (!demand) {
      this.m.appLimited = true;
      // A probe down cut short (a batch ended) must not stick: the next batch starts from the limit the pool
      // was known to take.
      const b = this.baseline;
      if (b && b.limit > this.value) return this.change(b.limit, 'up');
    }
    if (!this.measured(now)) return;
    const { means, appLimited } = this.m;
    if (appLimited) {
      this.baseline = null;
      return this.remeasure();
    }
    const b = this.baseline;
    const current = { limit: this.value, means };
    if (!b || b.limit === this.value) {
      this.baseline = current;
      return this.startup || now >= this.nextProbeAt ? this.probe(now) : this.remeasure();
    }
    const k = this.value / b.limit;
    const g = latencyRatio(means, b.means);
    // On a server that queues what it cannot serve, latency moves between 1 and k times when the limit moves k
    // times. Outside that band the mix changed mid-measurement: the comparison says nothing.
    if (g > Math.max(1, k) * CONSISTENT || g < Math.min(1, k) / CONSISTENT) {
      return k > 1 ? this.remeasure() : this.change(b.limit, 'up');
    }
    const interval = this.probeInterval(meanOf(means));
    if (k > 1) {
      // The share of the raise that only queued: 0 when latency held, 1 when it rose as much as the limit.
      const queued = (g - 1) / (k - 1);
      if (queued < 0.5) {
        if (this.value > this.ceiling) this.ceiling = Infinity;
        this.baseline = current;
        this.step = this.startup ? MAX_STEP : Math.min(MAX_STEP, 1 + 2 * (this.step - 1));
        return this.probe(now);
      }
      // Past the knee: latency = service time × limit ÷ knee, so the knee is at limit ÷ latency ratio. When latency
      // rose fully with the limit, the old limit was past the knee already and that estimate is only an upper
      // bound: probe down at once.
      this.startup = false;
      this.step = FIRST_STEP;
      this.nextProbeAt = queued >= 0.8 ? now : now + interval;
      return this.change(Math.min(this.value, (this.value / g) * HEADROOM), 'down');
    }
    // A probe down: latency fell with the limit only if the pool had been queueing, and by how much says where
    // the knee is (it is at the old limit × the latency ratio).
    this.nextProbeAt = now + interval;
    if ((1 - g) / (1 - k) > 0.5) {
      return this.change(Math.min(b.limit, Math.max(this.value, g * b.limit * HEADROOM)), 'down');
    }
    this.change(b.limit, 'up');
  }

  private followServers(demand: boolean): void {
    const { running, waiting } = this.servers!;
    this.startup = false;
    this.baseline = null;
    if (waiting > 0.1 * running) {
      // This worker's share of the queue is about its share of the requests there; half of it per window.
      return this.change(this.value * Math.max(0.7, 1 - (0.5 * waiting) / (running + waiting)), 'up');
    }
    if (demand && waiting === 0) this.change(this.value * FIRST_STEP, 'up');
  }

  /** True once the requests started since the last change have (nearly) all answered. */
  private measured(now: number): boolean {
    const m = this.m;
    if (m.skip > 0 && now - m.at > COHORT_PATIENCE_MS) {
      // The raise was never used up (the batches could not fill it): measure from here on anyway.
      m.skip = 0;
      m.from = now;
    }
    if (m.started >= m.cohort && m.answered >= m.cohort * COHORT_DONE) return true;
    return now - m.at > COHORT_PATIENCE_MS && m.answered >= MIN_COHORT;
  }

  private probe(now: number): void {
    const up = Math.min(
      this.value * (this.startup ? MAX_STEP : this.step),
      Math.max(this.ceiling, this.value * FIRST_STEP),
    );
    const next = this.direction === 'up' ? up : this.value * DOWN_PROBE;
    if (this.set(next)) return;
    // At a bound (MAX_WORKERS, or the floor): the next probe goes the other way.
    this.direction = this.direction === 'up' ? 'down' : 'up';
    this.nextProbeAt = now + this.probeInterval(meanOf(this.m.means));
    this.remeasure();
  }

  /** Probes every few latencies: often enough to follow a new mix, rarely enough that a bad probe costs little. */
  private probeInterval(meanMs: number): number {
    return Math.max(1_000, 4 * meanMs);
  }

  private change(next: number, nextDirection: 'up' | 'down'): void {
    this.direction = nextDirection;
    this.baseline = null;
    if (!this.set(next)) this.remeasure();
  }

  /** Sets the limit and starts measuring it; false when it was already that value. */
  private set(next: number): boolean {
    const clamped = Math.max(this.min, Math.min(this.opts.max, Math.round(next)));
    if (clamped === this.value) return false;
    const raise = clamped - this.value;
    this.value = clamped;
    this.remeasure(Math.max(0, raise));
    this.opts.onChange(clamped);
    return true;
  }

  private remeasure(skip = 0): void {
    this.m = this.measure(skip);
  }

  private measure(skip = 0): Measurement {
    const now = this.now();
    return {
      at: now,
      skip,
      from: skip > 0 ? Infinity : now,
      started: 0,
      cohort: Math.max(MIN_COHORT, Math.min(COHORT, 2 * this.value)),
      closedAt: Infinity,
      answered: 0,
      means: new Map(),
      overloaded: false,
      appLimited: false,
    };
  }
}
