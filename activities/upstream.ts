import { setTimeout as sleep } from 'node:timers/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { Agent, type Dispatcher } from 'undici';
import { RequestDeadlines, type Abortable } from './request-deadlines';

export type UpstreamOutcome =
  | {
      kind: 'response';
      statusCode: number;
      requestId: string;
      body: unknown;
      /** The body as one line of JSON: the server's own bytes when they already are. */
      json: string;
    }
  | { kind: 'error'; code: string; message: string };

export type AttemptOutcome = 'success' | 'http_error' | 'malformed' | 'timeout' | 'unreachable';

export interface UpstreamOptions {
  /** e.g. http://localhost:8000/v1; several servers (or balancers) share the requests, each to the least busy. */
  baseUrl: string | readonly string[];
  apiKey?: string;
  timeoutMs: number;
  maxRetries: number;
  /** First backoff step; doubles per attempt (capped at maxBackoffMs), half of it fixed and half jitter. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Told about every attempt (for metrics). */
  onAttempt?: (a: {
    outcome: AttemptOutcome;
    statusCode: number | null;
    latencyMs: number;
    /** The request's class for the adaptive limit: `${endpoint} ${model}`. */
    key: string;
  }) => void;
  /** Waits between attempts, rejecting when `signal` aborts; tests pass one that skips the clock. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<unknown>;
}

/**
 * The upstream slots of one request: the caller acquires the first attempt's before the request starts (so it
 * can bound how many requests it prepares); a retry waits for a slot again after its backoff.
 */
export interface RequestSlots {
  /** Releases the slot the caller holds for the first attempt. */
  first: () => void;
  /** Acquires a slot for a retry; the returned function releases it. */
  retry: () => Promise<() => void>;
}

type Target = { origin: string; path: string };
/** One base URL of the pool: its requests in flight, when it may be tried again, and its endpoints' targets. */
type Base = { url: string; inFlight: number; downUntil: number; targets: Map<string, Target> };
/**
 * A server that refused a connection sits out this long (unless every server does): refusing at once, it always has
 * the fewest requests in flight and would otherwise draw them all.
 */
const UNREACHABLE_PAUSE_MS = 5_000;

const MAX_RETRY_AFTER_MS = 5 * 60_000;
const RETRYABLE_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);

function retryAfterMs(headers: Record<string, string | string[] | undefined>): number | null {
  const ms = Number(headers['retry-after-ms']);
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const raw = headers['retry-after'];
  if (typeof raw !== 'string') return null;
  const s = Number(raw);
  if (Number.isFinite(s)) return Math.max(0, s * 1000);
  const date = Date.parse(raw);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}

/** undici's text(): a UTF-8 BOM is not part of the body. */
function decode(chunks: Buffer[], bytes: number): string {
  const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, bytes);
  const bom = body.length > 2 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf;
  return body.toString('utf8', bom ? 3 : 0);
}

/**
 * The body as one line of JSON for the result line: its own text where that already is one line (only JSON's
 * whitespace can surround a document JSON.parse accepted, and a raw newline can only be whitespace), else
 * serialised again.
 */
function oneLine(text: string, value: unknown): string {
  const trimmed = text.trim();
  return trimmed.includes('\n') || trimmed.includes('\r') ? JSON.stringify(value) : trimmed;
}

/**
 * One attempt, driven by undici's dispatcher directly: no response stream, no async resource and no AbortSignal
 * per request, which on a fast upstream cost more than the request itself. `done` settles once the whole body
 * is in, or at once when the attempt is aborted.
 */
class Attempt implements Dispatcher.DispatchHandler, Abortable {
  statusCode = 0;
  headers: IncomingHttpHeaders = {};
  chunks: Buffer[] = [];
  bytes = 0;
  readonly done: Promise<void>;
  private settle!: (err?: Error) => void;
  private controller: Dispatcher.DispatchController | null = null;
  private abortedWith: Error | null = null;

  constructor() {
    this.done = new Promise<void>((resolve, reject) => {
      this.settle = (err) => (err ? reject(err) : resolve());
    });
  }

  abort(reason: Error): void {
    if (this.abortedWith) return;
    this.abortedWith = reason;
    this.controller?.abort(reason);
    this.settle(reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.abortedWith) controller.abort(this.abortedWith);
  }

  onResponseStart(_: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    this.statusCode = statusCode;
    this.headers = headers;
  }

  onResponseData(_: Dispatcher.DispatchController, chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
  }

  onResponseEnd(): void {
    this.settle();
  }

  onResponseError(_: Dispatcher.DispatchController, err: Error): void {
    this.settle(err);
  }
}

/**
 * Sends request bodies to the vLLM pool. Only the body comes from the batch line: the URL, headers and
 * credentials are BESH's own, so a line cannot redirect the request or read the key.
 */
export class Upstream {
  readonly dispatcher: Dispatcher;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly deadlines: RequestDeadlines;
  private readonly headers: Record<string, string>;
  private readonly bases: Base[];
  /** Where the search for the least busy base starts: equals take turns. */
  private next = 0;

  constructor(private readonly opts: UpstreamOptions) {
    // undici's own header/body timeouts would cut long generations short; the deadlines bound each attempt.
    this.dispatcher = new Agent({ keepAliveTimeout: 30_000, headersTimeout: 0, bodyTimeout: 0 });
    this.backoffMs = opts.backoffMs ?? 500;
    this.maxBackoffMs = opts.maxBackoffMs ?? 30_000;
    this.deadlines = new RequestDeadlines(opts.timeoutMs);
    this.headers = { 'content-type': 'application/json' };
    if (opts.apiKey) this.headers.authorization = `Bearer ${opts.apiKey}`;
    const urls = typeof opts.baseUrl === 'string' ? [opts.baseUrl] : opts.baseUrl;
    this.bases = urls.map((url) => ({ url, inFlight: 0, downUntil: 0, targets: new Map() }));
  }

  /**
   * The base with the fewest requests in flight, taking turns among equals (round-robin when all answer alike),
   * among those not sitting out a refusal.
   */
  private pick(): Base {
    const n = this.bases.length;
    const now = n > 1 ? performance.now() : 0;
    let best = this.bases[this.next % n];
    for (let i = 1; i < n; i++) {
      const b = this.bases[(this.next + i) % n];
      const up = b.downUntil <= now;
      if (up !== best.downUntil <= now ? up : b.inFlight < best.inFlight) best = b;
    }
    this.next = (this.bases.indexOf(best) + 1) % n;
    return best;
  }

  private static target(base: Base, endpoint: string): Target {
    let target = base.targets.get(endpoint);
    if (!target) {
      const url = new URL(base.url + endpoint.replace(/^\/v1/, ''));
      target = { origin: url.origin, path: url.pathname + url.search };
      base.targets.set(endpoint, target);
    }
    return target;
  }

  /**
   * Resolves with the final outcome after retries; rejects only when `signal` aborts (cancel or shutdown).
   * `key` is the request's class for the adaptive limit (`${endpoint} ${model}`), passed on to onAttempt.
   */
  async send(
    endpoint: string,
    body: string | Buffer,
    signal: AbortSignal,
    slots: RequestSlots,
    key: string,
  ): Promise<UpstreamOutcome & { latencyMs: number }> {
    for (let attempt = 0; ; attempt++) {
      const release = attempt === 0 ? slots.first : await slots.retry();
      let outcome: UpstreamOutcome;
      let retryable: boolean;
      let wait: number | null = null;
      let kind: AttemptOutcome;
      let statusCode: number | null = null;
      const started = performance.now();
      const req = new Attempt();
      const tracked = this.deadlines.start(req, signal);
      // Each attempt picks again: a retry goes to another server when this one is the busy (or broken) one.
      const base = this.pick();
      const { origin, path } = Upstream.target(base, endpoint);
      base.inFlight++;
      try {
        this.dispatcher.dispatch({ origin, path, method: 'POST', headers: this.headers, body }, req);
        await req.done;
        const text = decode(req.chunks, req.bytes);
        const requestId = String(
          req.headers['x-request-id'] ?? `req_${Math.random().toString(16).slice(2, 14)}`,
        );
        let value: unknown;
        let parsed = true;
        try {
          // Proves the body is JSON before it is spliced into a result line (and gives its usage).
          value = JSON.parse(text);
        } catch {
          parsed = false;
        }
        statusCode = req.statusCode;
        if (statusCode >= 200 && statusCode < 300) {
          retryable = !parsed;
          kind = parsed ? 'success' : 'malformed';
          outcome = parsed
            ? { kind: 'response', statusCode, requestId, body: value, json: oneLine(text, value) }
            : {
                kind: 'error',
                code: 'invalid_upstream_response',
                message: 'The model server returned a malformed JSON body.',
              };
        } else {
          retryable = RETRYABLE_STATUS.has(statusCode);
          kind = 'http_error';
          wait = retryAfterMs(req.headers);
          if (!parsed) value = { error: { message: text.slice(0, 2000) } };
          const json = parsed ? oneLine(text, value) : JSON.stringify(value);
          outcome = { kind: 'response', statusCode, requestId, body: value, json };
        }
      } catch (err) {
        if (signal.aborted) throw signal.reason ?? err;
        const timedOut = (err as Error).name === 'TimeoutError';
        retryable = true;
        kind = timedOut ? 'timeout' : 'unreachable';
        if (!timedOut) base.downUntil = performance.now() + UNREACHABLE_PAUSE_MS;
        outcome = timedOut
          ? {
              kind: 'error',
              code: 'request_timeout',
              message: `The model server did not answer within ${this.opts.timeoutMs} ms.`,
            }
          : {
              kind: 'error',
              code: 'upstream_unreachable',
              message: `Could not reach the model server (${(err as NodeJS.ErrnoException).code ?? (err as Error).name}).`,
            };
      } finally {
        base.inFlight--;
        this.deadlines.end(tracked);
        release();
      }
      const latencyMs = performance.now() - started;
      this.opts.onAttempt?.({ outcome: kind, statusCode, latencyMs, key });
      if (!retryable || attempt >= this.opts.maxRetries) return { ...outcome, latencyMs };
      // "Equal jitter": the fixed half guarantees that 8 retries outlast a 30-second outage of the pool.
      const step = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** attempt);
      const backoff = step / 2 + (Math.random() * step) / 2;
      // Retry-After is honoured, but a server asking for hours must not park a batch that long.
      const delay = Math.max(Math.min(wait ?? 0, MAX_RETRY_AFTER_MS), backoff);
      await (this.opts.sleep ? this.opts.sleep(delay, signal) : sleep(delay, undefined, { signal }));
    }
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }
}
