// The pool's ceiling: the minimal client a user could write without BESH. `concurrency` loops, each sending
// the next body and reading the whole answer, over one undici Pool with a connection per loop. No
// retries, no files, no bookkeeping: whatever this reaches, the pool can do.
import { Pool } from 'undici';

export interface DirectResult {
  concurrency: number;
  requests: number;
  /** Answers other than 200 (or failed connections); any is a broken run. */
  errors: number;
  /** Epoch ms: first request sent, last answer read (the client's own view). */
  firstSentAt: number;
  lastDoneAt: number;
  /** CPU this process used while sending (the harness does nothing else meanwhile). */
  cpuSeconds: number;
}

/** Sends every body to `origin` + `path`, `concurrency` at a time. */
export async function runDirect(
  origin: string,
  path: string,
  bodies: string[],
  concurrency: number,
): Promise<DirectResult> {
  const pool = new Pool(origin, {
    connections: concurrency,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    headersTimeout: 0,
    bodyTimeout: 0,
  });
  const headers = { 'content-type': 'application/json' };
  let next = 0;
  let errors = 0;
  const cpu = process.cpuUsage();
  const firstSentAt = Date.now();
  const loop = async () => {
    for (let i = next++; i < bodies.length; i = next++) {
      try {
        const res = await pool.request({ path, method: 'POST', headers, body: bodies[i] });
        await res.body.text();
        if (res.statusCode !== 200) errors++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, bodies.length) }, loop));
  const lastDoneAt = Date.now();
  const used = process.cpuUsage(cpu);
  await pool.close();
  return {
    concurrency,
    requests: bodies.length,
    errors,
    firstSentAt,
    lastDoneAt,
    cpuSeconds: (used.user + used.system) / 1e6,
  };
}
