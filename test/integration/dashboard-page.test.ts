import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { toFile } from 'openai';
import type { Batch } from 'openai/resources/batches';
import { chromium, type Browser, type Page } from 'playwright-core';
import { batchLines, toJsonl, waitForBatch } from '../support/batches';
import { testOutputDir } from '../support/global';
import { startStack, type Stack } from '../support/stack';

const CHROMIUM = '/usr/bin/chromium';
// Not the machine's timezone (UTC), so times shown in UTC instead of the viewer's zone would not match.
const TZ = 'Europe/Berlin';
const XSS_METADATA = '<img src=x onerror=alert(1)>';
// No "/" or "\\" (so no closing tag): the upload keeps only the base name of what the client sends.
const XSS_FILENAME = 'q3 <script>alert(2)<script>.jsonl';

interface ChartMirror {
  labels: string[];
  starts: string[];
  datasets: Array<{ label: string; data: number[] }>;
}
type Charts = { throughput: ChartMirror; uploads: ChartMirror };

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
// ICU versions differ in which space they put before AM/PM; the test compares words, not space kinds.
const spaces = (s: string | null) => (s ?? '').replace(/\s+/g, ' ').trim();

/** Polls until `check` returns a truthy value. */
async function until<T>(what: string, check: () => Promise<T>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('Dashboard page in a real browser (Chromium)', function () {
  this.timeout(180_000);
  let s: Stack;
  let origin: string;
  let browser: Browser | undefined;
  let page: Page;
  let completed: Batch;
  let toDelete: Batch;
  let uploadedBytes: number;
  const dialogs: string[] = [];
  const hosts = new Set<string>();
  const pageErrors: string[] = [];
  const cspViolations: string[] = [];

  const usage = (b: Batch) => b.usage ?? { input_tokens: 0, output_tokens: 0, total_tokens: 0 };
  const apiGet = async <T>(p: string): Promise<T> => {
    const res = await fetch(`${origin}${p}`, { headers: { authorization: `Bearer ${s.keyA}` } });
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as T;
  };
  const row = (id: string) => page.getByTestId(`batch-row-${id}`);
  const cardValue = async (testId: string) =>
    page.getByTestId(testId).locator('.value').getAttribute('data-value');

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) {
      console.warn(`    skipped: ${CHROMIUM} is missing (\`make browser-tools\` installs Debian's chromium)`);
      this.skip();
    }
    // Two in service at a time, 50 ms each: small batches finish in a second, 1,200 requests take half a minute.
    s = await startStack({ simulator: { capacity: 2, baseLatencyMs: 50 } });
    origin = new URL(s.baseURL).origin;

    // A batch that completes with 2 of 40 requests rejected by the upstream, with hostile metadata and file name.
    const input = batchLines(40);
    for (const i of [3, 7]) delete input[i].body.messages;
    const file = await s.openai.files.create({
      file: await toFile(Buffer.from(toJsonl(input)), XSS_FILENAME),
      purpose: 'batch',
    });
    assert.equal(file.filename, XSS_FILENAME);
    const created = await s.openai.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      metadata: { note: XSS_METADATA },
    });
    completed = await waitForBatch(s.openai, created.id);
    assert.equal(completed.status, 'completed');
    // A second completed batch, deleted later through the page.
    const small = await s.openai.files.create({
      file: await toFile(Buffer.from(toJsonl(batchLines(5))), 'small.jsonl'),
      purpose: 'batch',
    });
    const second = await s.openai.batches.create({
      input_file_id: small.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    toDelete = await waitForBatch(s.openai, second.id);
    assert.equal(toDelete.status, 'completed');
    uploadedBytes = file.bytes + small.bytes;

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    const context = await browser.newContext({
      timezoneId: TZ,
      locale: 'en-US',
      viewport: { width: 1440, height: 900 },
      acceptDownloads: true,
    });
    page = await context.newPage();
    page.on('dialog', (d) => {
      dialogs.push(`${d.type()}: ${d.message()}`);
      void d.accept();
    });
    page.on('request', (r) => {
      const url = new URL(r.url());
      if (url.protocol === 'http:' || url.protocol === 'https:' || url.protocol.startsWith('ws'))
        hosts.add(url.hostname);
    });
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
  });

  after(async () => {
    await browser?.close();
    await s?.close();
  });

  it('serves the page and its assets without auth, with a strict CSP', async () => {
    const res = await fetch(`${origin}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self';/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    const chart = await fetch(`${origin}/dashboard/vendor/chart.umd.js`);
    assert.equal(chart.status, 200);
    assert.match(chart.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.match(await chart.text(), /Chart\.js v4/);
  });

  it('signs in with an API key kept for this tab only', async () => {
    await page.goto(`${origin}/`);
    await page.getByTestId('signin-key').fill('sk-not-a-real-key-0000000000');
    await page.getByTestId('signin-submit').click();
    await page.getByTestId('signin-error').waitFor();
    assert.match((await page.getByTestId('signin-error').textContent()) ?? '', /not accepted/);

    await page.getByTestId('signin-key').fill(s.keyA);
    await page.getByTestId('signin-submit').click();
    // A function, not a string: the page's CSP forbids eval, for the test as for anyone.
    await page.waitForFunction(() => {
      const charts = (globalThis as unknown as { __charts: Partial<Charts> }).__charts;
      return Boolean(charts.throughput && charts.uploads);
    });
    assert.equal(await page.evaluate('sessionStorage.getItem("besh.apiKey")'), s.keyA);
    assert.equal(await page.evaluate('localStorage.length'), 0);
    assert.equal(await page.evaluate('typeof window.Chart'), 'function', 'Chart.js loaded from this origin');
  });

  it('shows the 24 h cards and charts with what the batches did, in local time', async () => {
    assert.equal(await cardValue('card-created'), '2');
    assert.equal(await cardValue('card-completed'), '2');
    assert.equal(await cardValue('card-requests'), '45');
    assert.equal(Number(await cardValue('card-error-rate')), 2 / 45);
    assert.equal(spaces(await page.getByTestId('card-error-rate').locator('.value').textContent()), '4.4%');
    const tokens = usage(completed).total_tokens + usage(toDelete).total_tokens;
    assert.ok(tokens > 0);
    assert.equal(Number(await cardValue('card-tokens')), tokens);

    const charts = await page.evaluate<Charts>('window.__charts');
    const series = (c: ChartMirror, label: string) => {
      const d = c.datasets.find((x) => x.label === label);
      assert.ok(d, `dataset ${label}`);
      return d.data;
    };
    const t = charts.throughput;
    assert.equal(t.labels.length, 96);
    assert.equal(sum(series(t, 'Requests succeeded')), 43);
    assert.equal(sum(series(t, 'Requests failed')), 2);
    assert.equal(
      sum(series(t, 'Input tokens')),
      usage(completed).input_tokens + usage(toDelete).input_tokens,
    );
    assert.equal(
      sum(series(t, 'Output tokens')),
      usage(completed).output_tokens + usage(toDelete).output_tokens,
    );
    assert.equal(sum(series(charts.uploads, 'Files uploaded')), 2);
    assert.equal(sum(series(charts.uploads, 'Bytes uploaded')), uploadedBytes);

    // Labels are the buckets' UTC starts shown in the viewer's timezone; the last bucket is the current one.
    const last = Date.parse(t.starts[95]);
    assert.ok(Date.now() - last < 900_000 && last <= Date.now(), t.starts[95]);
    t.starts.forEach((start, i) => {
      const expected = new Date(start).toLocaleTimeString('en-US', {
        timeZone: TZ,
        hour: '2-digit',
        minute: '2-digit',
      });
      assert.equal(spaces(t.labels[i]), spaces(expected));
    });
    for (const id of ['chart-throughput', 'chart-uploads']) {
      const box = await page.getByTestId(id).boundingBox();
      assert.ok(box && box.width > 200 && box.height > 100, `${id} is drawn`);
    }
  });

  it('lists the batches with progress, status, downloads and a Temporal link, user text as text', async () => {
    const r = row(completed.id);
    await r.waitFor();
    assert.equal(await r.getByTestId('status').textContent(), 'completed');
    assert.match((await r.getByTestId('status').getAttribute('class')) ?? '', /\bstatus-completed\b/);
    assert.equal(await r.getByTestId('percent').textContent(), '100%');
    assert.equal(await r.getByTestId('counts').textContent(), '38 ok · 2 failed · 40 total');
    const created = new Date(completed.created_at * 1000).toLocaleString('en-US', { timeZone: TZ });
    assert.equal(spaces(await r.locator('td').nth(3).textContent()), spaces(created));

    // The stored XSS of the original: hostile metadata and file names show up as text and create no element.
    await until('the input file name', async () => ((await r.textContent()) ?? '').includes(XSS_FILENAME));
    assert.ok(((await r.textContent()) ?? '').includes(XSS_METADATA));
    assert.equal(await page.locator('img').count(), 0);
    assert.equal(await page.locator('script').count(), 2, 'only the page’s own two scripts');

    const view = await apiGet<{ temporal_url: string }>(`/v1/dashboard/batches/${completed.id}`);
    const link = page.getByTestId(`temporal-${completed.id}`);
    assert.equal(await link.getAttribute('href'), view.temporal_url);
    assert.equal(await link.getAttribute('target'), '_blank');
    assert.match((await link.getAttribute('rel')) ?? '', /\bnoopener\b/);

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByTestId(`download-output-${completed.id}`).click(),
    ]);
    const outputFile = await s.openai.files.retrieve(completed.output_file_id!);
    assert.equal(download.suggestedFilename(), outputFile.filename);
    const saved = fs
      .readFileSync(await download.path(), 'utf8')
      .split('\n')
      .filter(Boolean);
    assert.equal(saved.length, 38);
    const [errors] = await Promise.all([
      page.waitForEvent('download'),
      page.getByTestId(`download-error-${completed.id}`).click(),
    ]);
    assert.equal(
      fs
        .readFileSync(await errors.path(), 'utf8')
        .split('\n')
        .filter(Boolean).length,
      2,
    );
  });

  it('cancels a running batch and deletes another through the buttons', async () => {
    const file = await s.openai.files.create({
      file: await toFile(Buffer.from(toJsonl(batchLines(1200))), 'slow.jsonl'),
      purpose: 'batch',
    });
    const slow = await s.openai.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    await waitForBatch(s.openai, slow.id, {
      until: (b) => b.status === 'in_progress' && (b.request_counts?.completed ?? 0) > 0,
    });
    // Auto-refresh brings the new batch in, with its live progress and ETA.
    const r = row(slow.id);
    await r.waitFor({ timeout: 15_000 });
    await until('a live ETA', async () =>
      /^\d+% · ETA \d/.test((await r.getByTestId('percent').textContent()) ?? ''),
    );
    assert.equal(await r.getByTestId('status').textContent(), 'in_progress');
    await page.screenshot({ path: path.join(testOutputDir, 'dashboard-running.png'), fullPage: true });

    await page.getByTestId(`cancel-${slow.id}`).click();
    await until('the cancelling badge', async () =>
      ['cancelling', 'cancelled'].includes((await r.getByTestId('status').textContent()) ?? ''),
    );
    assert.ok(['cancelling', 'cancelled'].includes((await s.openai.batches.retrieve(slow.id)).status));
    const cancelled = await waitForBatch(s.openai, slow.id);
    assert.equal(cancelled.status, 'cancelled');
    assert.ok(cancelled.request_counts!.total === 1200 && cancelled.request_counts!.completed < 1200);
    await until(
      'the cancelled badge',
      async () => (await r.getByTestId('status').textContent()) === 'cancelled',
    );

    await page.getByTestId(`delete-${toDelete.id}`).click();
    await row(toDelete.id).waitFor({ state: 'detached' });
    await assert.rejects(s.openai.batches.retrieve(toDelete.id), (err: { status?: number }) => {
      assert.equal(err.status, 404);
      return true;
    });

    assert.deepEqual(
      dialogs.map((d) => d.split(':')[0]),
      ['confirm', 'confirm'],
      `only the two confirms: ${dialogs.join(' | ')}`,
    );
    assert.match(dialogs[0], new RegExp(`Cancel batch ${slow.id}`));
    assert.match(dialogs[1], new RegExp(`Delete batch ${toDelete.id}`));
    assert.equal(await page.getByTestId('error-banner').isVisible(), false);
    await page.screenshot({ path: path.join(testOutputDir, 'dashboard.png'), fullPage: true });
  });

  it('talked to nobody but its own origin, ran no injected code, and signs out', async () => {
    assert.deepEqual([...hosts], ['127.0.0.1']);
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(cspViolations, []);
    await page.getByTestId('signout').click();
    await page.getByTestId('signin-key').waitFor();
    assert.equal(await page.evaluate('sessionStorage.length'), 0);
    assert.equal(await page.getByTestId(`batch-row-${completed.id}`).count(), 0);
  });
});
