import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { toFile } from 'openai';
import type { Batch } from 'openai/resources/batches';
import { chromium, type Browser, type Page } from 'playwright-core';
import { projectRoot } from '../../src/paths';
import { batchLines, createBatch, downloadLines, toJsonl, waitForBatch } from '../support/batches';
import { testOutputDir } from '../support/global';
import { startStack, type Stack } from '../support/stack';

const CHROMIUM = '/usr/bin/chromium';
// Not the machine's timezone (UTC), so times shown in UTC instead of the viewer's zone would not match.
const TZ = 'Europe/Berlin';
const XSS_METADATA = '<img src=x onerror=alert(1)>';
// No "/" or "\\" (so no closing tag): the upload keeps only the base name of what the client sends.
const XSS_FILENAME = 'q3 <script>alert(2)<script>.jsonl';

interface ChartMirror {
  range: string;
  labels: string[];
  ticks: string[];
  starts: string[];
  datasets: Array<{ label: string; data: number[] }>;
}
type Charts = { throughput: ChartMirror; uploads: ChartMirror };

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
// "2026-12-01 14:05:09": the one format the page shows times in (Sweden's locale writes exactly that).
const isoUtc = (unix: number) => new Date(unix * 1000).toISOString().replace('T', ' ').slice(0, 19);
const isoIn = (zone: string, time: number | string) =>
  new Date(time).toLocaleString('sv-SE', { timeZone: zone });
// Text as a reader sees it: markup line breaks and indentation are one space.
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
  let failed: Batch;
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
    // A batch that fails validation: line 2 uses GET, line 3 another endpoint.
    const [good, wrongMethod, wrongUrl] = batchLines(3);
    const invalid = await s.openai.files.create({
      file: await toFile(
        Buffer.from(
          toJsonl([good, { ...wrongMethod, method: 'GET' }, { ...wrongUrl, url: '/v1/embeddings' }]),
        ),
        'invalid.jsonl',
      ),
      purpose: 'batch',
    });
    failed = await waitForBatch(
      s.openai,
      (
        await s.openai.batches.create({
          input_file_id: invalid.id,
          endpoint: '/v1/chat/completions',
          completion_window: '24h',
        })
      ).id,
    );
    assert.equal(failed.status, 'failed');
    uploadedBytes = file.bytes + small.bytes + invalid.bytes;

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

  it('shows the cards and charts over the smallest range that holds the data, times in UTC', async () => {
    // Every batch ran in the last minutes: the last hour holds them all.
    assert.equal(await page.getByTestId('range').inputValue(), '1h');
    assert.equal(await cardValue('card-created'), '3');
    assert.equal(await cardValue('card-completed'), '2');
    assert.equal(await cardValue('card-failed'), '1');
    assert.equal(await cardValue('card-requests'), '45');
    assert.equal(Number(await cardValue('card-error-rate')), 2 / 45);
    assert.equal(spaces(await page.getByTestId('card-error-rate').locator('.value').textContent()), '4.4%');
    assert.equal(
      await page.getByTestId('card-error-rate').locator('.sub').textContent(),
      '2 failed of 45 answered',
    );
    assert.equal(
      await page.getByTestId('card-requests').locator('.sub').textContent(),
      '43 succeeded · 2 failed',
    );
    const legend = (await page.getByTestId('legend').textContent()) ?? '';
    assert.match(spaces(legend), /Requests succeeded · failed lines the model server answered/);
    assert.match(spaces(legend), /“failed or not run” is OpenAI’s request_counts\.failed/);
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
    assert.equal(t.range, '1h');
    assert.equal(t.labels.length, 4);
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
    assert.equal(sum(series(charts.uploads, 'Files uploaded')), 3);
    assert.equal(sum(series(charts.uploads, 'Bytes uploaded')), uploadedBytes);

    // Labels are the buckets' starts in UTC, as the header says, 24 h; the last bucket is the current one.
    assert.equal(await page.getByTestId('timezone').textContent(), 'UTC');
    const last = Date.parse(t.starts[3]);
    assert.ok(Date.now() - last < 900_000 && last <= Date.now(), t.starts[3]);
    assert.deepEqual(t.ticks, t.labels, 'an hour has a tick every quarter');
    assert.deepEqual(
      t.labels,
      t.starts.map((start) => start.slice(11, 16)),
    );
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
    assert.equal(await r.locator('td').nth(3).textContent(), isoUtc(completed.created_at));

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

  it("switches every time to the viewer's zone, in the same format", async () => {
    const r = row(completed.id);
    await page.getByTestId('local-time').check();
    await until('times in Berlin', async () => (await page.getByTestId('timezone').textContent()) === TZ);
    await until(
      'the created time in Berlin',
      async () => (await r.locator('td').nth(3).textContent()) === isoIn(TZ, completed.created_at * 1000),
    );
    const throughput = async () => (await page.evaluate<Charts>('window.__charts')).throughput;
    await until('Berlin chart labels', async () => {
      const c = await throughput();
      return c.labels[0] !== c.starts[0].slice(11, 16);
    });
    const t = await throughput();
    assert.deepEqual(
      t.labels,
      t.starts.map((start) => isoIn(TZ, start).slice(11, 16)),
    );
    assert.match((await page.getByTestId('updated').textContent()) ?? '', /^Updated \d\d:\d\d:\d\d$/);
    await page.screenshot({ path: path.join(testOutputDir, 'dashboard-local-time.png') });
    await page.getByTestId('local-time').uncheck();
    await until(
      'times in UTC',
      async () => (await r.locator('td').nth(3).textContent()) === isoUtc(completed.created_at),
    );
  });

  it('offers 6 h, 24 h and 7 d, with ticks on round hours', async () => {
    const throughput = async () => (await page.evaluate<Charts>('window.__charts')).throughput;
    const show = async (range: string) => {
      await page.getByTestId('range').selectOption(range);
      await until(`the ${range} chart`, async () => (await throughput()).range === range);
      return throughput();
    };
    const h24 = await show('24h');
    assert.equal(h24.labels.length, 96);
    assert.equal(sum(h24.datasets.find((d) => d.label === 'Requests succeeded')!.data), 43);
    // Every 3 hours on the hour, in the zone the header names (UTC): 8 ticks in a day.
    assert.deepEqual(
      h24.ticks,
      h24.starts
        .map((x) => x.slice(11, 16))
        .filter((hm) => hm.endsWith(':00') && Number(hm.slice(0, 2)) % 3 === 0),
    );
    assert.equal(h24.ticks.length, 8);
    await page.screenshot({ path: path.join(testOutputDir, 'dashboard-range-24h.png') });
    const d7 = await show('7d');
    assert.equal(d7.labels.length, 672);
    // One tick a day, at midnight, labelled with the day.
    assert.deepEqual(
      d7.ticks,
      d7.starts.filter((x) => x.slice(11, 16) === '00:00').map((x) => `${x.slice(5, 10)} 00:00`),
    );
    assert.ok(d7.ticks.length >= 6, d7.ticks.join());
    assert.equal(await cardValue('card-requests'), '45', 'the cards cover the same range');
    const h6 = await show('6h');
    assert.equal(h6.labels.length, 24);
    assert.ok(h6.ticks.length >= 5 && h6.ticks.every((x) => x.endsWith(':00')), h6.ticks.join());
    const h1 = await show('1h');
    assert.equal(h1.labels.length, 4);
    await page.screenshot({ path: path.join(testOutputDir, 'dashboard-range-1h.png') });
  });

  it("shows a failed batch's first errors with their line numbers", async () => {
    const r = row(failed.id);
    await r.waitFor();
    assert.equal(await r.getByTestId('status').textContent(), 'failed');
    const errors = r.getByTestId('batch-errors').locator('li');
    assert.deepEqual(
      (await errors.allTextContents()).map((t) => t.split(':')[0]),
      ['line 2', 'line 3'],
    );
    assert.equal(await errors.first().textContent(), "line 2: The method must be 'POST'.");
    assert.equal(await errors.first().getAttribute('title'), 'invalid_method');
    assert.ok(await r.getByTestId('batch-errors').isVisible());
    assert.equal(await row(completed.id).getByTestId('batch-errors').isVisible(), false);
    await r.screenshot({ path: path.join(testOutputDir, 'dashboard-failed-batch.png') });
  });

  it('cancels a running batch and deletes another through the buttons', async () => {
    const file = await s.openai.files.create({
      file: await toFile(Buffer.from(toJsonl(batchLines(1200))), 'slow.jsonl'),
      purpose: 'batch',
    });
    // A BESH create parameter: the Node SDK sends extra body keys as they are.
    const slow = await s.openai.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      priority: 'low',
    } as Parameters<typeof s.openai.batches.create>[0]);
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
    assert.equal(await r.getByTestId('priority').textContent(), 'low');
    assert.match((await r.getByTestId('deadline').textContent()) ?? '', /^due in 23h \d+m$/);
    // The pool works for it: requests in flight against the adaptive limit.
    await until('the pool in use', async () => {
      const m = /^(\d+) of (\d+)$/.exec(
        (await page.getByTestId('pool-in-flight').first().textContent()) ?? '',
      );
      return m && Number(m[1]) > 0 && Number(m[2]) > 0;
    });
    // The results so far, saved from the partial results pages: each line once.
    const [partial] = await Promise.all([
      page.waitForEvent('download'),
      page.getByTestId(`download-partial-${slow.id}`).click(),
    ]);
    const soFar = fs
      .readFileSync(await partial.path(), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { custom_id: string });
    assert.ok(soFar.length > 0, 'lines answered so far');
    assert.equal(new Set(soFar.map((l) => l.custom_id)).size, soFar.length);
    await page.screenshot({ path: path.join(testOutputDir, 'dashboard-running.png'), fullPage: true });

    await page.getByTestId(`cancel-${slow.id}`).click();
    await until('the cancelling badge', async () =>
      ['cancelling', 'cancelled'].includes((await r.getByTestId('status').textContent()) ?? ''),
    );
    assert.ok(['cancelling', 'cancelled'].includes((await s.openai.batches.retrieve(slow.id)).status));
    const cancelled = await waitForBatch(s.openai, slow.id);
    assert.equal(cancelled.status, 'cancelled');
    const output = new Set((await downloadLines(s.openai, cancelled.output_file_id)).map((l) => l.custom_id));
    assert.deepEqual(
      soFar.filter((l) => !output.has(l.custom_id)),
      [],
      'every line saved so far is in the output',
    );
    assert.ok(cancelled.request_counts!.total === 1200 && cancelled.request_counts!.completed < 1200);
    await until(
      'the cancelled badge',
      async () => (await r.getByTestId('status').textContent()) === 'cancelled',
    );
    // Its unrun lines are in request_counts.failed, and the row says so; the cards count only answered ones.
    const c = cancelled.request_counts!;
    await until(
      'the cancelled counts',
      async () =>
        (await r.getByTestId('counts').textContent()) ===
        `${c.completed.toLocaleString('en-US')} ok · ${c.failed.toLocaleString('en-US')} failed or not run · 1,200 total`,
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

  it('never rounds failures away in the error rate', async () => {
    // The summary of a tenant with 3 failures in 15,953 answers, which the old page showed as "0.0%".
    const p = await page.context().newPage();
    await p.route(/\/v1\/dashboard\/summary(\?|$)/, async (route) => {
      const res = await route.fetch();
      const body = (await res.json()) as { requests: Record<string, number> };
      body.requests = { succeeded: 15_950, failed: 3, error_rate: 3 / 15_953 };
      await route.fulfill({ response: res, json: body });
    });
    await p.goto(`${origin}/`);
    await p.getByTestId('signin-key').fill(s.keyA);
    await p.getByTestId('signin-submit').click();
    const card = p.getByTestId('card-error-rate');
    await until('the error rate', async () => (await card.locator('.value').textContent()) === '0.02%');
    assert.equal(await card.locator('.sub').textContent(), '3 failed of 15,953 answered');
    await p.close();
  });

  it('shows a new tenant what to run first, then its batch with a long model name cut short', async () => {
    const p = await page.context().newPage();
    p.on('pageerror', (err) => pageErrors.push(err.message));
    await p.goto(`${origin}/`);
    await p.getByTestId('signin-key').fill(s.keyB);
    await p.getByTestId('signin-submit').click();
    await p.getByTestId('empty-state').waitFor();
    assert.equal(await p.getByTestId('range').inputValue(), '1h', 'no data: the smallest range');
    const cli = (await p.getByTestId('start-cli').textContent()) ?? '';
    const sdk = (await p.getByTestId('start-sdk').textContent()) ?? '';
    assert.match(
      cli,
      /^besh submit examples\/chat-completions\.jsonl --endpoint \/v1\/chat\/completions --wait$/m,
    );
    assert.match(cli, new RegExp(`^export BESH_BASE_URL=${origin}/v1$`, 'm'));
    assert.ok(sdk.includes(`OpenAI(base_url="${origin}/v1", api_key="sk-...")`), sdk);
    assert.match(sdk, /open\("examples\/chat-completions\.jsonl", "rb"\)/);
    assert.ok(fs.existsSync(path.join(projectRoot, 'examples', 'chat-completions.jsonl')));
    assert.ok(
      !((await p.textContent('body')) ?? '').includes(s.keyB),
      'the key is not written into the page',
    );
    assert.equal(await p.locator('#no-batches').isVisible(), false);
    await p.screenshot({ path: path.join(testOutputDir, 'dashboard-empty.png'), fullPage: true });

    // Its first batch names a model of the longest length the API accepts.
    const model = `acme/${'a-very-long-fine-tuned-model-name-'.repeat(8)}`.slice(0, 256);
    const b = await waitForBatch(
      s.openaiB,
      (await createBatch(s.openaiB, toJsonl(batchLines(2, undefined, model)))).id,
    );
    assert.equal(b.status, 'completed');
    const r = p.getByTestId(`batch-row-${b.id}`);
    await r.waitFor({ timeout: 15_000 });
    assert.equal(await p.getByTestId('empty-state').isVisible(), false);
    const name = r.getByTestId('model');
    assert.equal(await name.textContent(), model);
    assert.equal(await name.getAttribute('title'), model, 'the whole name on hover');
    const { clientWidth, scrollWidth } = await name.evaluate((n) => ({
      clientWidth: n.clientWidth,
      scrollWidth: n.scrollWidth,
    }));
    assert.ok(
      clientWidth < scrollWidth && clientWidth < 300,
      `cut short: ${clientWidth} of ${scrollWidth} px`,
    );
    // Every action button is on screen, without scrolling the table.
    const viewport = p.viewportSize()!;
    for (const id of [`download-output-${b.id}`, `temporal-${b.id}`, `delete-${b.id}`]) {
      const box = await p.getByTestId(id).boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= viewport.width, `${id} at ${JSON.stringify(box)}`);
    }
    await name.hover();
    await p.screenshot({ path: path.join(testOutputDir, 'dashboard-long-model.png') });
    await p.close();
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
