import { request } from 'undici';
import type { ServerQueue } from './adaptive-limit';

const RUNNING = 'vllm:num_requests_running';
const WAITING = 'vllm:num_requests_waiting';

/** The sum of a gauge over all its label sets (engines, models) in Prometheus' text format; null if absent. */
export function sumGauge(text: string, name: string): number | null {
  let sum: number | null = null;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const next = line[name.length];
    if (next !== '{' && next !== ' ') continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) sum = (sum ?? 0) + value;
  }
  return sum;
}

/**
 * Reads every vLLM server's queue gauges a few times a second and reports their sum, or null when any server
 * cannot be read (a partial sum would hide exactly the server that queues): the adaptive limit then falls back
 * to its client-side signal.
 */
export class ServerQueueWatch {
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readable: boolean | undefined;

  constructor(
    private readonly urls: string[],
    private readonly onReading: (queue: ServerQueue | null) => void,
    private readonly opts: { everyMs: number; timeoutMs: number } = { everyMs: 250, timeoutMs: 1000 },
    /** The pool whose servers these are, for the log. */
    private readonly pool = 'default',
  ) {}

  start(): void {
    void this.round();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  /** One reading of every server; the next starts when this one is over, so slow servers never pile up. */
  private async round(): Promise<void> {
    const readings = await Promise.all(this.urls.map((u) => this.read(u)));
    if (this.closed) return;
    const ok = readings.every((r) => r !== null);
    if (ok !== this.readable) {
      this.readable = ok;
      console.log(
        ok
          ? `adaptive limit of pool ${this.pool}: following the queue of ${this.urls.length} vLLM server(s)`
          : `adaptive limit of pool ${this.pool}: a vLLM server's /metrics cannot be read; using the client-side signal`,
      );
    }
    this.onReading(
      ok
        ? readings.reduce<ServerQueue>(
            (sum, r) => ({ running: sum.running + r!.running, waiting: sum.waiting + r!.waiting }),
            { running: 0, waiting: 0 },
          )
        : null,
    );
    this.timer = setTimeout(() => void this.round(), this.opts.everyMs);
  }

  private async read(url: string): Promise<ServerQueue | null> {
    try {
      const res = await request(url, { signal: AbortSignal.timeout(this.opts.timeoutMs) });
      const text = await res.body.text();
      if (res.statusCode !== 200) return null;
      const running = sumGauge(text, RUNNING);
      const waiting = sumGauge(text, WAITING);
      return running === null || waiting === null ? null : { running, waiting };
    } catch {
      return null;
    }
  }
}
