/* global window, document, sessionStorage, fetch, confirm, setTimeout, clearTimeout, URL, URLSearchParams, Blob, Chart */
// The BESH dashboard: plain browser JavaScript, no build step. Every string that comes from the API goes into
// the page as text (textContent, or setAttribute on attributes that cannot run code): the original dashboard
// put endpoints and ids into innerHTML and had a stored XSS.
(() => {
  'use strict';

  const REFRESH_MS = 5000;
  const PAGE_SIZE = 20;
  const KEY_STORAGE = 'besh.apiKey';
  // The ranges the cards and charts cover (smallest first) and the minutes between two x-axis ticks of each.
  const RANGES = [
    { name: '1h', seconds: 3600, tickMinutes: 15 },
    { name: '6h', seconds: 6 * 3600, tickMinutes: 60 },
    { name: '24h', seconds: 24 * 3600, tickMinutes: 180 },
    { name: '7d', seconds: 7 * 24 * 3600, tickMinutes: 1440 },
  ];
  const BUCKET_MS = 900_000;
  // The status groups of src/batches/lifecycle.ts; the server writes them ahead of this file.
  const STATUSES = window.BESH_LIFECYCLE.statuses;
  const CANCELLABLE = new Set(window.BESH_LIFECYCLE.cancellable);
  const TERMINAL = new Set(window.BESH_LIFECYCLE.terminal);
  // Batches that end before every line ran: their unrun lines count as failed in request_counts.
  const STOPPED = new Set(['cancelling', 'cancelled', 'expired', 'failed']);

  const $ = (id) => document.getElementById(id);

  const state = {
    // sessionStorage, not localStorage: the key is forgotten when the tab closes.
    key: sessionStorage.getItem(KEY_STORAGE),
    status: '',
    after: null,
    // The `after` cursor of every page before the current one, for "Newer".
    cursors: [],
    timer: null,
    // Bumped by every refresh, so an answer that arrives after a newer request (filter, page) is dropped.
    generation: 0,
    // Actions waiting on a confirm() or on the API: auto-refresh skips its turn meanwhile.
    busy: 0,
    // Times in UTC unless the viewer asks for their own zone.
    localTime: false,
    // The range the viewer picked, or at sign-in the smallest that holds the tenant's data.
    range: null,
    charts: {},
    chartSignatures: {},
    mirror: {},
    rows: new Map(),
    fileNames: new Map(),
  };

  // The last data each chart drew, read-only, so tests can check numbers without reading pixels.
  Object.defineProperty(window, '__charts', { get: () => state.mirror });

  /** An element with constant attribute names; children are appended as nodes or plain text. */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
    node.append(...children);
    return node;
  }

  // --- formatting ------------------------------------------------------------------------------------------------

  const num = (n) => Number(n).toLocaleString();

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return '—';
    const s = Math.max(0, Math.round(seconds));
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (d) return `${d}d ${h}h`;
    if (h) return `${h}h ${m}m`;
    if (m) return `${m}m ${s % 60}s`;
    return `${s}s`;
  }

  /** A share as a percentage that never rounds a failure away: 3 of 15,953 is "0.02%", not "0.0%". */
  function percentage(rate) {
    if (rate === null) return '—';
    const p = rate * 100;
    if (p === 0 || p >= 0.1) return `${p.toFixed(1)}%`;
    return `${Number(p.toPrecision(1))}%`;
  }

  function bytes(n) {
    const units = ['B', 'KB', 'MB', 'GB', 'TB'];
    let v = n;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
  }

  // The API sends UTC with a `Z`. Every time is shown one way, "2026-12-01 14:05:09" (24 h), in UTC or, when
  // the viewer switches, in the browser's zone; the header names the zone in use.
  const LOCAL_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';
  const formatter = (timeZone) =>
    new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
  const FORMATTERS = { utc: formatter('UTC'), local: formatter(undefined) };

  /** The parts of a time in the zone in use: date "2026-12-01", minute "14:05", second "14:05:09". */
  function zoned(time) {
    const parts = FORMATTERS[state.localTime ? 'local' : 'utc'].formatToParts(new Date(time));
    const p = Object.fromEntries(parts.map((x) => [x.type, x.value]));
    return {
      date: `${p.year}-${p.month}-${p.day}`,
      minute: `${p.hour}:${p.minute}`,
      second: `${p.hour}:${p.minute}:${p.second}`,
    };
  }
  const dateTime = (time) => {
    const z = zoned(time);
    return `${z.date} ${z.second}`;
  };
  const clock = (time) => zoned(time).minute;

  /** Only http(s) links from the API become hrefs. */
  function httpUrl(value) {
    try {
      const url = new URL(value);
      return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
    } catch {
      return null;
    }
  }

  // --- API -------------------------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(path, init = {}) {
    const res = await fetch(path, {
      ...init,
      cache: 'no-store',
      headers: { authorization: `Bearer ${state.key}` },
    });
    if (res.ok) return res;
    const body = await res.json().catch(() => null);
    const message = body && body.error && body.error.message ? body.error.message : `HTTP ${res.status}`;
    throw new ApiError(res.status, message);
  }

  const getJson = async (path) => (await api(path)).json();

  /** A file's name, asked once per file id (names never change). */
  function fileName(id) {
    if (!state.fileNames.has(id)) {
      const name = getJson(`/v1/files/${encodeURIComponent(id)}`).then((f) => f.filename);
      // A failed lookup is asked again next time instead of being remembered.
      name.catch(() => state.fileNames.delete(id));
      state.fileNames.set(id, name);
    }
    return state.fileNames.get(id);
  }

  // --- banner and sign-in ----------------------------------------------------------------------------------------

  function showBanner(text) {
    $('banner').textContent = text;
    $('banner').hidden = false;
  }

  function handleError(err, doing) {
    if (err instanceof ApiError && err.status === 401) {
      signOut('That API key was not accepted. Sign in again.');
      return;
    }
    showBanner(`Could not ${doing}: ${err.message}`);
  }

  function showSignIn(message) {
    $('dashboard').hidden = true;
    $('signin').hidden = false;
    $('signin-error').textContent = message || '';
    $('signin-error').hidden = !message;
    $('signin-key').value = '';
    $('signin-key').focus();
  }

  async function signIn(key) {
    state.key = key;
    try {
      await getJson('/v1/dashboard/summary');
    } catch (err) {
      state.key = null;
      const unauthorized = err instanceof ApiError && err.status === 401;
      showSignIn(unauthorized ? 'That API key was not accepted.' : `Could not sign in: ${err.message}`);
      return;
    }
    sessionStorage.setItem(KEY_STORAGE, key);
    showDashboard();
  }

  function signOut(message) {
    state.key = null;
    state.generation++;
    sessionStorage.removeItem(KEY_STORAGE);
    clearTimeout(state.timer);
    // Nothing of this tenant stays on the page for the next key.
    for (const chart of Object.values(state.charts)) chart.destroy();
    state.charts = {};
    state.chartSignatures = {};
    state.mirror = {};
    state.rows.clear();
    state.fileNames.clear();
    state.range = null;
    $('batch-rows').replaceChildren();
    for (const node of document.querySelectorAll('.card .value, .card .sub')) node.textContent = '';
    $('banner').hidden = true;
    $('updated').textContent = '';
    showSignIn(message);
  }

  function showDashboard() {
    $('signin').hidden = true;
    $('dashboard').hidden = false;
    showZone();
    createCharts();
    schedule();
    void refresh();
  }

  function showZone() {
    $('timezone').textContent = state.localTime ? LOCAL_ZONE : 'UTC';
    $('local-zone').textContent = LOCAL_ZONE;
  }

  /** Switches every time on the page between UTC and the viewer's zone. */
  function switchZone(local) {
    state.localTime = local;
    showZone();
    // Charts and rows redraw only what changed; the labels change although the numbers do not.
    state.chartSignatures = {};
    for (const r of state.rows.values()) r.signature = '';
    void refresh();
  }

  // --- refresh ---------------------------------------------------------------------------------------------------

  function schedule() {
    clearTimeout(state.timer);
    state.timer = setTimeout(async () => {
      if ($('auto-refresh').checked && state.busy === 0 && !document.hidden) await refresh();
      if (state.key) schedule();
    }, REFRESH_MS);
  }

  async function refresh() {
    if (!state.key) return;
    const generation = ++state.generation;
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (state.after) query.set('after', state.after);
    if (state.status) query.set('status', state.status);
    try {
      if (!state.range) {
        const range = await defaultRange();
        if (generation !== state.generation) return;
        state.range = range;
        $('range').value = range;
      }
      const range = `range=${state.range}`;
      // The pools and deliveries panels show their own failure: the batches keep updating without them.
      const panel = (path) => getJson(path).catch(() => null);
      const [summary, throughput, uploads, list, pools, deliveries] = await Promise.all([
        getJson(`/v1/dashboard/summary?${range}`),
        getJson(`/v1/dashboard/throughput?${range}`),
        getJson(`/v1/dashboard/uploads?${range}`),
        getJson(`/v1/dashboard/batches?${query}`),
        panel('/v1/dashboard/pools'),
        panel('/v1/dashboard/webhooks?limit=20'),
      ]);
      if (generation !== state.generation) return;
      renderCards(summary);
      renderThroughput(throughput);
      renderUploads(uploads);
      renderBatches(list);
      renderPools(pools && pools.data);
      renderDeliveries(deliveries && deliveries.data);
      $('banner').hidden = true;
      $('updated').textContent = `Updated ${zoned(Date.now()).second}`;
    } catch (err) {
      if (generation === state.generation) handleError(err, 'load the dashboard');
    }
  }

  /** The smallest range that holds every bucket with data of the last 7 days (the smallest one when none has). */
  async function defaultRange() {
    const week = RANGES[RANGES.length - 1].name;
    const series = await Promise.all([
      getJson(`/v1/dashboard/throughput?range=${week}`),
      getJson(`/v1/dashboard/uploads?range=${week}`),
    ]);
    const busy = (b) => Object.entries(b).some(([k, v]) => k !== 'start' && Number(v) > 0);
    const starts = series.flatMap((s) => s.data.filter(busy).map((b) => Date.parse(b.start)));
    if (starts.length === 0) return RANGES[0].name;
    // The range's first bucket starts (range - one bucket) before the current bucket's start.
    const span = Date.now() - Math.min(...starts) + BUCKET_MS;
    return (RANGES.find((r) => r.seconds * 1000 >= span) || RANGES[RANGES.length - 1]).name;
  }

  // --- cards -----------------------------------------------------------------------------------------------------

  function setCard(testId, value, text, sub) {
    const card = document.querySelector(`[data-testid="${testId}"]`);
    const valueNode = card.querySelector('.value');
    valueNode.textContent = text;
    // The raw number, for tests and tools that read the page.
    valueNode.dataset.value = value === null ? '' : String(value);
    card.querySelector('.sub').textContent = sub;
  }

  function renderCards(s) {
    const b = s.batches;
    const r = s.requests;
    setCard('card-created', b.created, num(b.created), `${num(b.running)} running now`);
    setCard('card-completed', b.completed, num(b.completed), `of ${num(b.created)} created`);
    setCard(
      'card-failed',
      b.failed,
      num(b.failed),
      `${num(b.cancelled)} cancelled · ${num(b.expired)} expired`,
    );
    const answered = r.succeeded + r.failed;
    setCard(
      'card-requests',
      answered,
      num(answered),
      `${num(r.succeeded)} succeeded · ${num(r.failed)} failed`,
    );
    setCard(
      'card-error-rate',
      r.error_rate,
      percentage(r.error_rate),
      `${num(r.failed)} failed of ${num(answered)} answered`,
    );
    setCard(
      'card-tokens',
      s.tokens.total,
      num(s.tokens.total),
      `${num(s.tokens.input)} in · ${num(s.tokens.output)} out`,
    );
    setCard(
      'card-duration',
      s.mean_batch_duration_seconds,
      duration(s.mean_batch_duration_seconds),
      'created → finished',
    );
    setCard('card-storage', s.storage.bytes, bytes(s.storage.bytes), `${num(s.storage.files)} files`);
  }

  // --- charts ----------------------------------------------------------------------------------------------------

  const COLORS = {
    ok: '#2f9e5b',
    failed: '#d64545',
    input: '#3b7dd8',
    output: '#8e5bd0',
    uploads: '#e0902f',
    bytes: '#555f6d',
  };

  function chartOptions(left, right, rightTick, name) {
    return {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: 'index', intersect: false },
      scales: {
        x: {
          stacked: true,
          // A tick (and its grid line) only on the round times of the range; null hides the others.
          ticks: {
            maxRotation: 0,
            autoSkip: false,
            callback: (value, index) => {
              const drawn = state.mirror[name];
              return drawn && drawn.isTick[index] ? drawn.labels[index] : null;
            },
          },
        },
        left: {
          position: 'left',
          stacked: true,
          beginAtZero: true,
          ticks: { precision: 0 },
          title: { display: true, text: left },
        },
        right: {
          position: 'right',
          beginAtZero: true,
          grid: { drawOnChartArea: false },
          ticks: { callback: rightTick },
          title: { display: true, text: right },
        },
      },
      plugins: {
        // In dataset order (requests first), not in drawing order.
        legend: {
          position: 'bottom',
          labels: { boxWidth: 12, sort: (a, b) => a.datasetIndex - b.datasetIndex },
        },
        tooltip: {
          callbacks: {
            // The full bucket, e.g. "2026-12-01 14:00 – 14:15".
            title: (items) => {
              const start = (state.mirror[name] || { starts: [] }).starts[items[0].dataIndex];
              if (!start) return '';
              const end = new Date(Date.parse(start) + 900_000).toISOString();
              const z = zoned(start);
              return `${z.date} ${z.minute} – ${clock(end)}`;
            },
          },
        },
      },
    };
  }

  const bar = (label, color) => ({
    type: 'bar',
    label,
    data: [],
    backgroundColor: color,
    yAxisID: 'left',
    stack: 'left',
    order: 2,
  });
  const line = (label, color) => ({
    type: 'line',
    label,
    data: [],
    borderColor: color,
    backgroundColor: color,
    yAxisID: 'right',
    pointRadius: 0,
    borderWidth: 2,
    tension: 0.25,
    order: 1,
  });

  function createCharts() {
    if (state.charts.throughput) return;
    state.charts.throughput = new Chart($('chart-throughput'), {
      data: {
        labels: [],
        datasets: [
          bar('Requests succeeded', COLORS.ok),
          bar('Requests failed', COLORS.failed),
          line('Input tokens', COLORS.input),
          line('Output tokens', COLORS.output),
        ],
      },
      options: chartOptions('requests', 'tokens', (v) => num(v), 'throughput'),
    });
    state.charts.uploads = new Chart($('chart-uploads'), {
      data: {
        labels: [],
        datasets: [bar('Files uploaded', COLORS.uploads), line('Bytes uploaded', COLORS.bytes)],
      },
      options: chartOptions('files', 'bytes', (v) => bytes(v), 'uploads'),
    });
  }

  /** Redraws a chart only when its numbers changed, and mirrors what it drew. */
  function drawChart(name, buckets, columns) {
    const chart = state.charts[name];
    const starts = buckets.map((b) => b.start);
    const series = columns.map((c) => buckets.map((b) => Number(b[c]) || 0));
    const signature = JSON.stringify([state.range, starts, series]);
    if (signature === state.chartSignatures[name]) return;
    state.chartSignatures[name] = signature;
    const range = RANGES.find((r) => r.name === state.range) || RANGES[0];
    const times = starts.map(zoned);
    // A week's labels carry the day ("12-01 00:00"); shorter ranges' only the time.
    const labels = times.map((z) => (range.seconds > 86400 ? `${z.date.slice(5)} ${z.minute}` : z.minute));
    const isTick = times.map((z) => {
      const [h, m] = z.minute.split(':').map(Number);
      return (h * 60 + m) % range.tickMinutes === 0;
    });
    // Mirrored before drawing: the tick callback reads it.
    const frozen = Object.freeze({
      range: range.name,
      labels: Object.freeze([...labels]),
      isTick: Object.freeze(isTick),
      ticks: Object.freeze(labels.filter((_, i) => isTick[i])),
      starts: Object.freeze([...starts]),
      datasets: Object.freeze(
        chart.data.datasets.map((d, i) =>
          Object.freeze({ label: d.label, data: Object.freeze([...series[i]]) }),
        ),
      ),
    });
    state.mirror = Object.freeze({ ...state.mirror, [name]: frozen });
    chart.data.labels = labels;
    series.forEach((data, i) => {
      chart.data.datasets[i].data = data;
    });
    chart.update();
  }

  function renderThroughput(t) {
    drawChart('throughput', t.data, [
      'requests_succeeded',
      'requests_failed',
      'input_tokens',
      'output_tokens',
    ]);
  }

  function renderUploads(u) {
    drawChart('uploads', u.data, ['uploads', 'bytes']);
  }

  // --- batch table -----------------------------------------------------------------------------------------------

  /** One table row, built once per batch and then updated in place, so buttons stay put while it refreshes. */
  function createRow(id) {
    const r = { id, batch: null, signature: '' };
    r.status = el('span', { 'data-testid': 'status' });
    r.problems = el('ul', { class: 'batch-errors small', 'data-testid': 'batch-errors' });
    r.fileName = el('div', { class: 'file-name small muted' });
    r.metadata = el('div', { class: 'metadata' });
    r.endpoint = el('code');
    r.model = el('div', { class: 'model small muted', 'data-testid': 'model' });
    r.created = el('span');
    r.priority = el('span', { 'data-testid': 'priority' });
    r.deadline = el('div', { class: 'small muted', 'data-testid': 'deadline' });
    r.progress = el('progress', { max: '100', value: '0' });
    r.percent = el('div', { class: 'small', 'data-testid': 'percent' });
    r.counts = el('div', { class: 'small muted', 'data-testid': 'counts' });
    r.tokens = el('span');
    r.duration = el('span');
    r.output = el(
      'button',
      {
        type: 'button',
        class: 'link',
        'data-testid': `download-output-${id}`,
        title: 'Download the results',
      },
      'Output',
    );
    r.errors = el(
      'button',
      {
        type: 'button',
        class: 'link',
        'data-testid': `download-error-${id}`,
        title: 'Download the failed requests',
      },
      'Errors',
    );
    r.sofar = el(
      'button',
      {
        type: 'button',
        class: 'link',
        'data-testid': `download-partial-${id}`,
        title: 'Download the results answered so far',
      },
      'Output so far',
    );
    r.temporal = el(
      'a',
      {
        target: '_blank',
        rel: 'noopener noreferrer',
        'data-testid': `temporal-${id}`,
        title: 'Open in Temporal',
      },
      'Temporal ↗',
    );
    r.cancel = el('button', { type: 'button', class: 'warn', 'data-testid': `cancel-${id}` }, 'Cancel');
    r.remove = el('button', { type: 'button', class: 'danger', 'data-testid': `delete-${id}` }, 'Delete');

    r.output.addEventListener('click', () => void download(r.batch.output_file_id, 'output'));
    r.errors.addEventListener('click', () => void download(r.batch.error_file_id, 'error'));
    r.sofar.addEventListener('click', () => void downloadPartial(id));
    r.cancel.addEventListener(
      'click',
      () =>
        void act(
          `Cancel batch ${id}?\n\nRequests already answered are kept; the rest are marked cancelled.`,
          `cancel batch ${id}`,
          () => api(`/v1/batches/${encodeURIComponent(id)}/cancel`, { method: 'POST' }),
        ),
    );
    r.remove.addEventListener(
      'click',
      () =>
        void act(
          `Delete batch ${id}?\n\nA running batch is cancelled first; its output and error files are deleted.`,
          `delete batch ${id}`,
          async () => {
            await api(`/v1/batches/${encodeURIComponent(id)}`, { method: 'DELETE' });
            dropRow(id);
          },
        ),
    );

    r.tr = el(
      'tr',
      { 'data-testid': `batch-row-${id}` },
      el('td', {}, el('code', { class: 'batch-id', title: id }, id), r.fileName, r.metadata),
      el('td', {}, r.status, r.priority, r.problems),
      el('td', {}, r.endpoint, r.model),
      el('td', { class: 'nowrap' }, r.created, r.deadline),
      el('td', { class: 'progress-col' }, r.progress, r.percent, r.counts),
      el('td', { class: 'num' }, r.tokens),
      el('td', { class: 'nowrap' }, r.duration),
      el('td', { class: 'actions' }, r.output, r.sofar, r.errors, r.temporal, r.cancel, r.remove),
    );
    return r;
  }

  function fillRow(r, b) {
    const inputChanged = !r.batch || r.batch.input_file_id !== b.input_file_id;
    r.batch = b;
    r.status.textContent = b.status;
    r.status.className = `badge status-${STATUSES.includes(b.status) ? b.status : 'unknown'}`;
    if (inputChanged) {
      r.fileName.textContent = b.input_file_id;
      fileName(b.input_file_id).then(
        (name) => {
          r.fileName.textContent = name;
          r.fileName.setAttribute('title', `${name} (${b.input_file_id})`);
        },
        () => undefined,
      );
    }
    r.problems.replaceChildren(...b.errors.map(errorItem));
    if (b.errors_total > b.errors.length) {
      r.problems.append(el('li', { class: 'muted' }, `… ${num(b.errors_total - b.errors.length)} more`));
    }
    r.problems.hidden = b.errors.length === 0;
    r.metadata.replaceChildren(
      ...Object.entries(b.metadata || {}).map(([k, v]) =>
        el('span', { class: 'chip', title: `${k}: ${v}` }, `${k}: ${v}`),
      ),
    );
    r.endpoint.textContent = b.endpoint;
    r.model.textContent = b.model || '';
    // A long name is cut with an ellipsis (CSS); the whole of it shows on hover.
    r.model.setAttribute('title', b.model || '');
    r.created.textContent = dateTime(b.created_at);
    r.created.setAttribute('title', b.created_at);
    // Normal is the default: only another priority is worth a badge.
    const priority = b.priority || 'normal';
    r.priority.textContent = priority === 'normal' ? '' : priority;
    r.priority.className =
      priority === 'normal' ? '' : `badge priority-${priority === 'high' ? 'high' : 'low'}`;
    r.priority.setAttribute('title', `priority ${priority}`);
    // The deadline matters while the batch runs; afterwards the row's times say how it ended.
    const running = b.expires_at && !TERMINAL.has(b.status);
    const left = running ? (Date.parse(b.expires_at) - Date.now()) / 1000 : 0;
    r.deadline.textContent = !running ? '' : left > 0 ? `due in ${duration(left)}` : 'due now';
    r.deadline.setAttribute('title', running ? `deadline (completion window) ${dateTime(b.expires_at)}` : '');
    r.deadline.hidden = !running;
    const percent = Math.max(0, Math.min(100, Math.floor(Number(b.percent) || 0)));
    r.progress.value = percent;
    r.progress.className = `bar-${STATUSES.includes(b.status) ? b.status : 'unknown'}`;
    r.percent.textContent =
      b.eta_seconds === null || b.eta_seconds === undefined
        ? `${percent}%`
        : `${percent}% · ETA ${duration(b.eta_seconds)}`;
    const c = b.request_counts;
    // OpenAI's request_counts.failed also holds the lines a stopped batch never ran; the label says so.
    const failedLabel = STOPPED.has(b.status) ? 'failed or not run' : 'failed';
    r.counts.textContent = `${num(c.completed)} ok · ${num(c.failed)} ${failedLabel} · ${num(c.total)} total`;
    r.tokens.textContent = num(b.usage.total_tokens);
    r.tokens.setAttribute('title', `${num(b.usage.input_tokens)} in · ${num(b.usage.output_tokens)} out`);
    r.duration.textContent =
      b.duration_seconds !== null
        ? duration(b.duration_seconds)
        : `${duration((Date.now() - Date.parse(b.created_at)) / 1000)} so far`;
    r.output.hidden = !b.output_file_id;
    r.sofar.hidden = !!b.output_file_id || TERMINAL.has(b.status) || b.request_counts.completed === 0;
    r.errors.hidden = !b.error_file_id;
    const temporal = httpUrl(b.temporal_url);
    r.temporal.hidden = !temporal;
    if (temporal) r.temporal.setAttribute('href', temporal);
    r.cancel.hidden = !CANCELLABLE.has(b.status);
    r.tr.classList.toggle('finished', TERMINAL.has(b.status));
  }

  /** One of a batch's errors, "line 3: message", the code on hover. */
  function errorItem(e) {
    const where = e.line === null || e.line === undefined ? '' : `line ${e.line}: `;
    return el('li', { title: e.code }, el('strong', {}, where), e.message);
  }

  function dropRow(id) {
    const r = state.rows.get(id);
    if (!r) return;
    r.tr.remove();
    state.rows.delete(id);
  }

  function renderBatches(list) {
    const tbody = $('batch-rows');
    const seen = new Set();
    let previous = null;
    for (const b of list.data) {
      seen.add(b.id);
      let r = state.rows.get(b.id);
      if (!r) {
        r = createRow(b.id);
        state.rows.set(b.id, r);
      }
      const signature = JSON.stringify(b);
      // Unchanged batches (most finished ones) cost a string comparison per refresh.
      if (signature !== r.signature || b.duration_seconds === null) {
        fillRow(r, b);
        r.signature = signature;
      }
      const wanted = previous ? previous.nextSibling : tbody.firstChild;
      if (wanted !== r.tr) tbody.insertBefore(r.tr, wanted);
      previous = r.tr;
    }
    for (const id of [...state.rows.keys()]) if (!seen.has(id)) dropRow(id);
    // A tenant without a single batch gets the first steps instead of an empty table.
    const none = list.data.length === 0;
    const newTenant = none && !state.status && state.cursors.length === 0;
    $('getting-started').hidden = !newTenant;
    $('no-batches').hidden = !none || newTenant;
    $('prev-page').disabled = state.cursors.length === 0;
    $('next-page').disabled = !list.has_more;
    $('next-page').dataset.after = list.last_id || '';
    $('page-label').textContent = `Page ${state.cursors.length + 1}`;
  }

  /** Each upstream pool: requests in flight against its adaptive limit, rate and latency. */
  function renderPools(pools) {
    $('pools-unavailable').hidden = pools !== null;
    if (pools === null) return;
    $('pool-rows').replaceChildren(
      ...pools.map((p) =>
        el(
          'tr',
          { 'data-testid': `pool-row-${p.pool}` },
          el('td', {}, el('code', {}, p.pool)),
          el(
            'td',
            { class: 'progress-col' },
            el('progress', { max: String(Math.max(1, p.limit)), value: String(p.in_flight) }),
            el(
              'div',
              { class: 'small', 'data-testid': 'pool-in-flight' },
              `${num(p.in_flight)} of ${num(p.limit)}`,
            ),
          ),
          el(
            'td',
            { class: 'num', 'data-testid': 'pool-rate' },
            `${num(Math.round(p.requests_per_second))}/s`,
          ),
          el(
            'td',
            { class: 'num', 'data-testid': 'pool-latency' },
            p.mean_latency_ms === null ? '–' : `${num(p.mean_latency_ms)} ms`,
          ),
          el('td', { class: 'num muted' }, num(p.workers)),
        ),
      ),
    );
    $('no-pools').hidden = pools.length > 0;
  }

  /** The latest webhook deliveries: delivered, retrying (with the last answer) or given up. */
  function renderDeliveries(deliveries) {
    $('deliveries-unavailable').hidden = deliveries !== null;
    if (deliveries === null) return;
    $('delivery-rows').replaceChildren(
      ...deliveries.map((d) => {
        const answer =
          d.last_status_code !== null && d.last_status_code !== undefined
            ? `HTTP ${d.last_status_code}`
            : d.last_error || '';
        const when = d.delivered_at ?? d.last_attempt_at ?? d.created_at;
        return el(
          'tr',
          { 'data-testid': `delivery-row-${d.event_id}-${d.endpoint_id}` },
          el('td', {}, el('code', {}, d.type), el('div', { class: 'small muted' }, d.event_id)),
          el('td', {}, el('code', { class: 'batch-id', title: d.batch_id }, d.batch_id)),
          el('td', {}, el('code', { class: 'small' }, d.endpoint_id)),
          el(
            'td',
            {},
            el('span', { class: `badge delivery-${d.state}`, 'data-testid': 'delivery-state' }, d.state),
          ),
          el('td', { class: 'num', 'data-testid': 'delivery-attempts' }, num(d.attempts)),
          el('td', { class: 'small' }, answer),
          el('td', { class: 'nowrap' }, when ? dateTime(when * 1000) : ''),
        );
      }),
    );
    $('no-deliveries').hidden = deliveries.length > 0;
  }

  // --- actions ---------------------------------------------------------------------------------------------------

  /** Asks first; auto-refresh waits while the question is open and the API answers. */
  async function act(question, doing, run) {
    state.busy++;
    try {
      if (!confirm(question)) return;
      await run();
      await refresh();
    } catch (err) {
      handleError(err, doing);
    } finally {
      state.busy--;
    }
  }

  /** Saves a Blob as a download named `name`. */
  function saveBlob(blob, name) {
    const url = URL.createObjectURL(blob);
    const link = el('a', { href: url, download: name, hidden: '' });
    document.body.append(link);
    link.click();
    link.remove();
    // Revoked later: the browser reads the Blob after the click returns.
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }

  /** The content endpoint needs the key in a header, so the file is fetched and saved from a Blob. */
  async function download(fileId, kind) {
    state.busy++;
    try {
      const [name, res] = await Promise.all([
        fileName(fileId),
        api(`/v1/files/${encodeURIComponent(fileId)}/content`),
      ]);
      saveBlob(await res.blob(), name || `${fileId}.jsonl`);
    } catch (err) {
      handleError(err, `download the ${kind} file ${fileId}`);
    } finally {
      state.busy--;
    }
  }

  /** The lines a running batch has answered so far (GET …/partial_results, page after page), saved as a file. */
  async function downloadPartial(id) {
    state.busy++;
    try {
      const pages = [];
      let after = null;
      for (;;) {
        const query = new URLSearchParams({ limit: '10000' });
        if (after) query.set('after', after);
        const res = await api(`/v1/batches/${encodeURIComponent(id)}/partial_results?${query}`);
        const page = await res.blob();
        pages.push(page);
        after = res.headers.get('x-next-after');
        if (page.size === 0 || res.headers.get('x-has-more') === 'false') break;
      }
      saveBlob(new Blob(pages, { type: 'application/jsonl' }), `${id}_output_so_far.jsonl`);
    } catch (err) {
      handleError(err, `download the results of batch ${id} so far`);
    } finally {
      state.busy--;
    }
  }

  // --- wiring ----------------------------------------------------------------------------------------------------

  $('signin-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const key = $('signin-key').value.trim();
    if (key) void signIn(key);
  });
  $('signout').addEventListener('click', () => signOut());
  $('refresh').addEventListener('click', () => void refresh());
  $('range').append(...RANGES.map((r) => el('option', { value: r.name }, `last ${r.name}`)));
  $('range').addEventListener('change', () => {
    state.range = $('range').value;
    void refresh();
  });
  $('local-time').addEventListener('change', () => switchZone($('local-time').checked));
  $('auto-refresh').addEventListener('change', () => {
    if ($('auto-refresh').checked) void refresh();
  });
  {
    const base = `${window.location.origin}/v1`;
    $('start-cli').textContent = [
      'make install-cli                  # once, in the checkout: puts besh on your PATH',
      'export BESH_API_KEY=sk-...        # the key you signed in with',
      `export BESH_BASE_URL=${base}`,
      'besh submit examples/chat-completions.jsonl --endpoint /v1/chat/completions --wait',
    ].join('\n');
    $('start-sdk').textContent = [
      'from openai import OpenAI',
      '',
      `client = OpenAI(base_url="${base}", api_key="sk-...")`,
      'f = client.files.create(file=open("examples/chat-completions.jsonl", "rb"), purpose="batch")',
      'b = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")',
      'print(b.id, b.status)',
    ].join('\n');
  }
  $('status-filter').append(...STATUSES.map((status) => el('option', { value: status }, status)));
  $('status-filter').addEventListener('change', () => {
    state.status = $('status-filter').value;
    state.after = null;
    state.cursors = [];
    void refresh();
  });
  $('next-page').addEventListener('click', () => {
    const after = $('next-page').dataset.after;
    if (!after) return;
    state.cursors.push(state.after);
    state.after = after;
    void refresh();
  });
  $('prev-page').addEventListener('click', () => {
    if (state.cursors.length === 0) return;
    state.after = state.cursors.pop();
    void refresh();
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && state.key) void refresh();
  });

  if (state.key) showDashboard();
  else showSignIn();
})();
