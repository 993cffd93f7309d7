// Samples the worker's adaptive concurrency limit and its in-flight requests from its Prometheus endpoint
// (WORKER_METRICS_PORT), to show how the limit finds the pool's concurrency from a cold start.
import { setTimeout as sleep } from 'node:timers/promises';

export interface LimitSample {
  /** Epoch ms. */
  t: number;
  limit: number;
  inFlight: number;
}

/** A gauge summed over its label sets (one per upstream pool); NaN when absent. */
function gauge(text: string, name: string): number {
  const values = [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'gm'))];
  return values.length ? values.reduce((sum, m) => sum + Number(m[1]), 0) : NaN;
}

export async function scrapeLimit(port: number, key: string): Promise<LimitSample> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, {
    headers: { authorization: `Bearer ${key}` },
    signal: AbortSignal.timeout(2000),
  });
  if (!res.ok) throw new Error(`worker metrics answered ${res.status}`);
  const text = await res.text();
  return {
    t: Date.now(),
    limit: gauge(text, 'besh_upstream_concurrency_limit'),
    inFlight: gauge(text, 'besh_upstream_in_flight'),
  };
}

/** Scrapes every `everyMs` until stop() (which returns the samples). A missed scrape is skipped. */
export function sampleLimit(port: number, key: string, everyMs = 250): { stop(): Promise<LimitSample[]> } {
  const samples: LimitSample[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const started = Date.now();
      try {
        samples.push(await scrapeLimit(port, key));
      } catch {
        /* the worker is busy or stopping; the next scrape will tell */
      }
      await sleep(Math.max(0, everyMs - (Date.now() - started)));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return samples;
    },
  };
}
