// Partial results (GET /v1/batches/{id}/partial_results) on the integration stack: how many lines a reader gets
// while a batch runs, what a page costs, and how fast a finished batch reads back, next to downloading its output
// file. Run with `make bench-partial` (mocha's global fixture starts the Temporal dev server); it prints one JSON
// line per measurement. BENCHMARK_PARTIAL_REQUESTS sets the batch size (default 20,000).
import assert from 'node:assert/strict';
import type OpenAI from 'openai';
import { batchLines, createBatch, toJsonl, waitForBatch } from '../test/support/batches';
import { startStack } from '../test/support/stack';

const N = Number(process.env.BENCHMARK_PARTIAL_REQUESTS ?? 20_000);
const POLL_MS = 1000;

async function page(client: OpenAI, id: string, after: string | undefined) {
  const t = process.hrtime.bigint();
  const res = await client
    .get(`/batches/${id}/partial_results`, { query: { after, limit: 10_000 } })
    .asResponse();
  const text = await res.text();
  return {
    ms: Number(process.hrtime.bigint() - t) / 1e6,
    lines: text.split('\n').filter(Boolean).length,
    bytes: Buffer.byteLength(text),
    next: res.headers.get('x-next-after') ?? undefined,
    more: res.headers.get('x-has-more') !== 'false',
  };
}

const quantile = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

describe('bench: partial results', function () {
  this.timeout(600_000);
  it(`${N} requests, read once a second while they run, then again from the start`, async () => {
    // 64 slots at 40 ms: 1,600 requests a second, so the batch runs for several polls.
    const s = await startStack({
      simulator: { capacity: 64, baseLatencyMs: 40 },
      env: { MAX_WORKERS: '64' },
    });
    try {
      const batch = await createBatch(s.openai, toJsonl(batchLines(N)));
      let after: string | undefined;
      const pageMs: number[] = [];
      let whileRunning = 0;
      let total = 0;
      let cursorChars = 0;
      for (let more = true; more;) {
        const status = (await s.openai.batches.retrieve(batch.id)).status;
        const p = await page(s.openai, batch.id, after);
        pageMs.push(p.ms);
        total += p.lines;
        if (status === 'in_progress') whileRunning += p.lines;
        cursorChars = Math.max(cursorChars, p.next?.length ?? 0);
        after = p.next;
        more = p.more;
        if (more && p.lines === 0) await new Promise((r) => setTimeout(r, POLL_MS));
      }
      assert.equal(total, N);
      console.log(
        JSON.stringify({
          requests: N,
          polls: pageMs.length,
          linesWhileInProgress: whileRunning,
          pageMsP50: +quantile(pageMs, 0.5).toFixed(1),
          pageMsMax: +Math.max(...pageMs).toFixed(1),
          cursorCharsMax: cursorChars,
        }),
      );

      const t = process.hrtime.bigint();
      let lines = 0;
      let bytes = 0;
      let pages = 0;
      for (let cursor: string | undefined, more = true; more; pages++) {
        const p = await page(s.openai, batch.id, cursor);
        lines += p.lines;
        bytes += p.bytes;
        cursor = p.next;
        more = p.more;
      }
      const ms = Number(process.hrtime.bigint() - t) / 1e6;
      const done = await waitForBatch(s.openai, batch.id);
      const d = process.hrtime.bigint();
      const file = await (await s.openai.files.content(done.output_file_id!)).text();
      const downloadMs = Number(process.hrtime.bigint() - d) / 1e6;
      assert.equal(lines, N);
      console.log(
        JSON.stringify({
          finishedReadLines: lines,
          pages,
          mb: +(bytes / 1e6).toFixed(1),
          ms: Math.round(ms),
          linesPerSecond: Math.round(lines / (ms / 1000)),
          outputFileDownloadMs: Math.round(downloadMs),
          outputFileMb: +(Buffer.byteLength(file) / 1e6).toFixed(1),
        }),
      );
    } finally {
      await s.close();
    }
  });
});
