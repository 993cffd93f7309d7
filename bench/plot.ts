// bench/throughput.svg, drawn by hand (no chart dependency): one panel per comparison, answers per second
// leaving the pool for BESH and the direct client, and BESH's adaptive limit against the pool's slots.
import { mixComparison } from './report';
import type { Comparison, Results } from './results';

const PANEL_W = 560;
const PANEL_H = 250;
const PAD = { left: 58, right: 58, top: 34, bottom: 38 };
const COLS = 2;
const COLORS = {
  besh: '#1f77b4',
  direct: '#9a9a9a',
  limit: '#ff7f0e',
  inFlight: '#f5b97a',
  grid: '#e6e6e6',
  text: '#333',
};

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A round step (1, 2 or 5 × 10^k) giving about `n` ticks up to `max`. */
function niceStep(max: number, n = 5): number {
  const raw = Math.max(max, 1e-9) / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
}

function title(c: Comparison): string {
  const what =
    c.batches > 1 ? `${c.batches} batches × ${(c.requests / c.batches).toLocaleString('en-US')}` : '';
  const n = c.requests.toLocaleString('en-US');
  return c.slots === 0
    ? `Infinitely fast upstream (${c.pool}), ${n} requests`
    : `${c.pool} slots, ${what || `${n} requests`}`;
}

function panel(c: Comparison, heading: string, x0: number, y0: number): string {
  const w = PANEL_W - PAD.left - PAD.right;
  const h = PANEL_H - PAD.top - PAD.bottom;
  const t0 = Math.min(...c.besh.batches.map((b) => b.createdAt));
  const done = Math.max(...c.besh.batches.map((b) => b.statusAt.completed));
  // Up to the batch's completion (plus a little), where BESH's story ends.
  const xMax =
    Math.max((done - t0) / 1000, (c.direct.pool.lastAt - c.direct.client.firstSentAt) / 1000) * 1.03;
  const besh = c.besh.buckets.filter((b) => b.s <= xMax);
  const direct = c.direct.buckets.filter((b) => b.s <= xMax);
  const yMax = Math.max(...besh.map((b) => b.rate), ...direct.map((b) => b.rate), 1) * 1.1;
  const limits = c.besh.limit
    .map((s) => ({ s: (s.t - t0) / 1000, v: s.limit }))
    .filter((p) => p.s >= 0 && p.s <= xMax);
  const rMax = Math.max(...limits.map((p) => p.v), c.slots, 1) * 1.15;
  const X = (s: number) => x0 + PAD.left + (s / xMax) * w;
  const Y = (v: number) => y0 + PAD.top + h - (v / yMax) * h;
  const R = (v: number) => y0 + PAD.top + h - (v / rMax) * h;
  const parts: string[] = [];
  const text = (x: number, y: number, s: string, attrs = '') =>
    parts.push(`<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${esc(s)}</text>`);

  text(x0 + PAD.left, y0 + 20, heading, 'font-weight="bold"');
  const xs = niceStep(xMax, 6);
  for (let s = 0; s <= xMax; s += xs) {
    parts.push(`<line x1="${X(s)}" x2="${X(s)}" y1="${Y(0)}" y2="${Y(yMax)}" stroke="${COLORS.grid}"/>`);
    text(X(s), Y(0) + 15, `${+s.toFixed(2)}`, 'text-anchor="middle"');
  }
  text(x0 + PAD.left + w / 2, Y(0) + 31, 'seconds', 'text-anchor="middle"');
  const ys = niceStep(yMax);
  for (let v = 0; v <= yMax; v += ys) {
    parts.push(`<line x1="${X(0)}" x2="${X(xMax)}" y1="${Y(v)}" y2="${Y(v)}" stroke="${COLORS.grid}"/>`);
    text(X(0) - 6, Y(v) + 4, `${Math.round(v)}`, 'text-anchor="end"');
  }
  text(
    x0 + 14,
    y0 + PAD.top + h / 2,
    'answers/s',
    `transform="rotate(-90 ${x0 + 14} ${y0 + PAD.top + h / 2})" text-anchor="middle"`,
  );
  const rs = niceStep(rMax, 4);
  for (let v = 0; v <= rMax; v += rs)
    text(X(xMax) + 6, R(v) + 4, `${Math.round(v)}`, `fill="${COLORS.limit}"`);
  const rx = x0 + PANEL_W - 12;
  text(
    rx,
    y0 + PAD.top + h / 2,
    'in flight',
    `transform="rotate(90 ${rx} ${y0 + PAD.top + h / 2})" text-anchor="middle" fill="${COLORS.limit}"`,
  );

  const line = (pts: [number, number][], color: string, extra = '', width = 1.6) => {
    if (pts.length === 0) return;
    const points = pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
    parts.push(
      `<polyline fill="none" stroke="${color}" stroke-width="${width}" ${extra} points="${points}"/>`,
    );
  };
  line(
    direct.map((b) => [X(b.s + 0.125), Y(b.rate)]),
    COLORS.direct,
  );
  line(
    besh.map((b) => [X(b.s + 0.125), Y(b.rate)]),
    COLORS.besh,
  );
  if (c.slots > 0)
    line(
      [
        [X(0), R(c.slots)],
        [X(xMax), R(c.slots)],
      ],
      COLORS.limit,
      'stroke-dasharray="5 4"',
    );
  // A step line: the limit holds until the next sample.
  const steps: [number, number][] = [];
  for (const [i, p] of limits.entries()) {
    if (i > 0) steps.push([X(p.s), R(limits[i - 1].v)]);
    steps.push([X(p.s), R(p.v)]);
  }
  line(
    c.besh.limit
      .filter((p) => p.t >= t0 && (p.t - t0) / 1000 <= xMax)
      .map((p) => [X((p.t - t0) / 1000), R(p.inFlight)]),
    COLORS.inFlight,
    '',
    1,
  );
  line(steps, COLORS.limit);
  parts.push(`<rect x="${X(0)}" y="${Y(yMax)}" width="${w}" height="${h}" fill="none" stroke="#bbb"/>`);
  return parts.join('\n');
}

export function renderSvg(res: Results): string {
  const panels = [
    ...res.utilisation,
    ...(res.concurrent ? [res.concurrent] : []),
    ...(res.fast ? [res.fast] : []),
  ].map((c) => ({ c, heading: title(c) }));
  // The mix job's measured batches; time 0 is the measured batch's create, after the batch before it.
  for (const m of res.mix?.cases ?? []) {
    for (const r of m.runs) {
      const n = m.requests.toLocaleString('en-US');
      panels.push({
        c: mixComparison(m, r, res.mix!.pool),
        heading: `Mix ${m.id}: ${m.title}, ${r.mode} (${n})`,
      });
    }
  }
  const rows = Math.ceil(panels.length / COLS);
  const legendH = 30;
  const width = PANEL_W * COLS;
  const height = rows * PANEL_H + legendH;
  const legend = [
    [COLORS.besh, '', 'BESH: answers/s'],
    [COLORS.direct, '', 'direct client: answers/s'],
    [COLORS.limit, '', 'BESH adaptive limit (right axis)'],
    [COLORS.inFlight, '', 'BESH in flight (right axis)'],
    [COLORS.limit, 'stroke-dasharray="5 4"', 'pool slots (right axis)'],
  ]
    .map(([color, dash, label], i) => {
      const x = 20 + i * 225;
      return (
        `<line x1="${x}" x2="${x + 28}" y1="16" y2="16" stroke="${color}" stroke-width="2" ${dash}/>` +
        `<text x="${x + 34}" y="20">${esc(label)}</text>`
      );
    })
    .join('\n');
  const body = panels.map(({ c, heading }, i) =>
    panel(c, heading, (i % COLS) * PANEL_W, legendH + Math.floor(i / COLS) * PANEL_H),
  );
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11" fill="${COLORS.text}">
<rect width="100%" height="100%" fill="white"/>
${legend}
${body.join('\n')}
</svg>
`;
}
