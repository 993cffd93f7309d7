import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request, type Dispatcher } from 'undici';

export type UpstreamOutcome =
  | { kind: 'response'; statusCode: number; requestId: string; body: unknown }
  | { kind: 'error'; code: string; message: string };

export type AttemptOutcome = 'success' | 'http_error' | 'malformed' | 'timeout' | 'unreachable';

export interface UpstreamOptions {
  /** e.g. http://localhost:8000/v1 */
  baseUrl: string;
  apiKey?: string;
  timeoutMs: number;
  maxRetries: number;
  /** First backoff step; doubles per attempt (capped at maxBackoffMs), half of it fixed and half jitter. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Told about every attempt (for metrics). */
  onAttempt?: (a: { outcome: AttemptOutcome; statusCode: number | null; latencyMs: number }) => void;
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

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
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

  constructor(private readonly opts: UpstreamOptions) {
    // undici's own header/body timeouts would cut long generations short; the per-request signal bounds them.
    this.dispatcher = new Agent({ keepAliveTimeout: 30_000, headersTimeout: 0, bodyTimeout: 0 });
    this.backoffMs = opts.backoffMs ?? 500;
    this.maxBackoffMs = opts.maxBackoffMs ?? 30_000;
  }

  /** Resolves with the final outcome after retries; rejects only when `signal` aborts (cancel or shutdown). */
  async send(
    endpoint: string,
    body: string,
    signal: AbortSignal,
    slots: RequestSlots,
  ): Promise<UpstreamOutcome & { latencyMs: number }> {
    const url = this.opts.baseUrl + endpoint.replace(/^\/v1/, '');
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.opts.apiKey) headers.authorization = `Bearer ${this.opts.apiKey}`;
    for (let attempt = 0; ; attempt++) {
      const release = attempt === 0 ? slots.first : await slots.retry();
      let outcome: UpstreamOutcome;
      let retryable: boolean;
      let wait: number | null = null;
      let kind: AttemptOutcome;
      let statusCode: number | null = null;
      const started = performance.now();
      try {
        const res = await request(url, {
          method: 'POST',
          body,
          headers,
          dispatcher: this.dispatcher,
          signal: AbortSignal.any([signal, AbortSignal.timeout(this.opts.timeoutMs)]),
        });
        const text = await res.body.text();
        const requestId = String(
          res.headers['x-request-id'] ?? `req_${Math.random().toString(16).slice(2, 14)}`,
        );
        const parsed = parseJson(text);
        statusCode = res.statusCode;
        if (res.statusCode >= 200 && res.statusCode < 300) {
          retryable = !parsed.ok;
          kind = parsed.ok ? 'success' : 'malformed';
          outcome = parsed.ok
            ? { kind: 'response', statusCode: res.statusCode, requestId, body: parsed.value }
            : {
                kind: 'error',
                code: 'invalid_upstream_response',
                message: 'The model server returned a malformed JSON body.',
              };
        } else {
          retryable = RETRYABLE_STATUS.has(res.statusCode);
          kind = 'http_error';
          wait = retryAfterMs(res.headers);
          outcome = {
            kind: 'response',
            statusCode: res.statusCode,
            requestId,
            body: parsed.ok ? parsed.value : { error: { message: text.slice(0, 2000) } },
          };
        }
      } catch (err) {
        if (signal.aborted) throw signal.reason ?? err;
        const timedOut = (err as Error).name === 'TimeoutError';
        retryable = true;
        kind = timedOut ? 'timeout' : 'unreachable';
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
        release();
      }
      const latencyMs = performance.now() - started;
      this.opts.onAttempt?.({ outcome: kind, statusCode, latencyMs });
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
