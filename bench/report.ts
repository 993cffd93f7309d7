// Turns a run's results into the console lines printed as it goes and into BENCHMARKS.md: the targets of
// issues 7 and 12 with a ✅/❌ each, a table per section, and notes that say by how much and why a target missed.
import { BUSY_THRESHOLD, BUSY_WINDOW_MS } from './metrics';
import type { BeshRun, Comparison, MixCase, MixRun, Results } from './results';

const sec = (ms: number) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s` : '—');
const r2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '—');
const pct = (x: number) => (Number.isFinite(x) ? `${Math.round(x * 100)}%` : '—');
const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—');
const mb = (x: number) => (Number.isFinite(x) ? `${Math.round(x)} MB` : '—');
const mark = (ok: boolean | null) => (ok === null ? '—' : ok ? '✅' : '❌');

/** Direct-client pool span ÷ BESH pool span: both from first request in to last answer out, at the pool. */
export const utilisation = (c: Comparison) => c.direct.pool.spanMs / c.besh.pool.spanMs;
/** Create → first upstream request. */
export const startMs = (b: BeshRun) => b.pool.firstAt - Math.min(...b.batches.map((x) => x.createdAt));
/** Last upstream answer → last batch seen `completed`. */
export const finishMs = (b: BeshRun) =>
  Math.max(...b.batches.map((x) => x.statusAt.completed)) - b.pool.lastAt;
const rps = (requests: number, ms: number) => (requests * 1000) / ms;
const per1k = (cpuS: number, requests: number) => (cpuS * 1000) / requests;
const beshCpu = (b: BeshRun) =>
  b.cpu.batch.api + b.cpu.batch.worker + b.cpu.batch.temporal + b.cpu.batch.postgres;

/** When the adaptive limit first reached the pool's slots (ms after create), its peak, and where it ended. */
export function limitStats(b: BeshRun, slots: number) {
  const t0 = Math.min(...b.batches.map((x) => x.createdAt));
  const reached = b.limit.find((s) => s.limit >= slots);
  const during = b.limit.filter((s) => s.t <= b.pool.lastAt);
  return {
    reachedMs: slots > 0 && reached ? reached.t - t0 : NaN,
    max: Math.max(...b.limit.map((s) => s.limit)),
    atEnd: during.length ? during[during.length - 1].limit : NaN,
    maxInFlight: Math.max(...b.limit.map((s) => s.inFlight)),
  };
}

/**
 * The adaptive limit over BESH's pool span (first request in to last answer out): the limit when the batch was
 * created (what the worker carried over from before), its mean and peak, and the mean in flight.
 */
export function limitDuring(b: BeshRun) {
  const inSpan = b.limit.filter((s) => s.t >= b.pool.firstAt && s.t <= b.pool.lastAt);
  // A span shorter than the 250 ms scrape interval: the whole run's samples say more than none.
  const during = inSpan.length ? inSpan : b.limit;
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, x) => a + x, 0) / xs.length : NaN);
  return {
    atCreate: b.limit[0]?.limit ?? NaN,
    mean: mean(during.map((s) => s.limit)),
    peak: during.length ? Math.max(...during.map((s) => s.limit)) : NaN,
    meanInFlight: mean(during.map((s) => s.inFlight)),
  };
}

/** The direct client's own time for its requests: first sent → last answer read. */
const directWallMs = (c: Comparison) => c.direct.client.lastDoneAt - c.direct.client.firstSentAt;
/** An environment variable's name in code type; plain words as they are. */
const code = (s: string) => (/^[A-Z_]+$/.test(s) ? `\`${s}\`` : s);

export function printLine(x: string | Comparison): void {
  if (typeof x === 'string') return console.log(x);
  const { direct: d, besh: b } = x;
  const lim = limitStats(b, x.slots);
  console.log(
    `[${x.pool}] ${int(x.requests)} requests${x.batches > 1 ? ` in ${x.batches} batches` : ''}: ` +
      `direct ${sec(d.pool.spanMs)} at ${d.concurrency} | BESH pool span ${sec(b.pool.spanMs)} → ` +
      `utilisation ${r2(utilisation(x))} | create→completed ${sec(b.wallMs)} | start ${sec(startMs(b))}, ` +
      `finish ${sec(finishMs(b))} | tail ${sec(b.pool.tailMs)} (direct ${sec(d.pool.tailMs)}) | ` +
      `limit max ${lim.max}, end ${lim.atEnd} | peak RSS API ${mb(b.memory.apiPeakMb)}, worker ` +
      `${mb(b.memory.workerPeakMb)} | CPU-s/1k: BESH ${r2(per1k(beshCpu(b), x.requests))}, direct ` +
      `${r2(per1k(d.client.cpuSeconds, x.requests))} | ${b.batches.map((y) => y.historyEvents).join('+')} events`,
  );
}

function table(head: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

interface Target {
  what: string;
  measured: string;
  ok: boolean | null;
  /** Why it missed, with the evidence from this run. */
  why?: string;
}

function targets(res: Results): Target[] {
  const out: Target[] = [];
  const big = res.pools.find((p) => p.viaNginx);
  const bigRuns = res.utilisation.filter((c) => c.pool === big?.name).sort((a, b) => a.requests - b.requests);
  const largest = bigRuns[bigRuns.length - 1];
  const smallest = res.utilisation.filter((c) => c.requests === Math.min(...bigRuns.map((x) => x.requests)));
  const slow = (c: Comparison) => {
    const lim = limitStats(c.besh, c.slots);
    const p = c.besh.pool;
    const busy =
      p.rampMs >= p.spanMs
        ? `The pool was never ≥ ${pct(BUSY_THRESHOLD)} busy (the direct client got there in ${sec(c.direct.pool.rampMs)})`
        : `The pool took ${sec(p.rampMs)} from the first request to be ≥ ${pct(BUSY_THRESHOLD)} busy ` +
          `(direct client: ${sec(c.direct.pool.rampMs)}) and was under that for ${sec(p.dipsMs)} more ` +
          `before the tail (direct: ${sec(c.direct.pool.dipsMs)})`;
    return (
      `${busy}; the adaptive limit reached the ${c.slots} slots ` +
      `${Number.isFinite(lim.reachedMs) ? `${sec(lim.reachedMs)} after create` : `never (peak ${lim.max})`}; ` +
      `tail ${sec(c.besh.pool.tailMs)} (direct ${sec(c.direct.pool.tailMs)}); mean busy ` +
      `${pct(c.besh.pool.meanBusy)} (direct ${pct(c.direct.pool.meanBusy)}); machine CPU ` +
      `${pct(c.besh.machineBusy)} busy.`
    );
  };
  if (largest) {
    const u = utilisation(largest);
    out.push({
      what: `Pool utilisation ≥ 0.95, ${int(largest.requests)} requests, ${largest.pool}`,
      measured: r2(u),
      ok: largest.requests >= 50_000 ? u >= 0.95 : null,
      why: u < 0.95 ? slow(largest) : undefined,
    });
  }
  for (const c of smallest) {
    const u = utilisation(c);
    out.push({
      what: `Pool utilisation ≥ 0.90, ${int(c.requests)} requests, ${c.pool}`,
      measured: r2(u),
      ok: u >= 0.9,
      why: u < 0.9 ? slow(c) : undefined,
    });
  }
  if (res.fast) {
    const f = res.fast;
    const ratio = rps(f.requests, f.besh.pool.spanMs) / rps(f.requests, f.direct.pool.spanMs);
    const b = f.besh;
    const wallS = b.pool.spanMs / 1000;
    out.push({
      what: 'Infinitely fast upstream: BESH requests/s ≥ 0.5 × direct client',
      measured: `${r2(ratio)} (${int(rps(f.requests, b.pool.spanMs))} vs ${int(rps(f.requests, f.direct.pool.spanMs))} req/s)`,
      ok: ratio >= 0.5,
      why:
        ratio < 0.5
          ? `Over the ${sec(b.pool.spanMs)} span the worker used ${r2(b.cpu.batch.worker / wallS)} of a core, ` +
            `Temporal ${r2(b.cpu.batch.temporal / wallS)}, PostgreSQL ${r2(b.cpu.batch.postgres / wallS)}, the ` +
            `API ${r2(b.cpu.batch.api / wallS)}, the simulator ${r2(b.cpu.batch.pool / wallS)}; the machine's ` +
            `${res.machine.cpus} cores were ${pct(b.machineBusy)} busy. BESH's processes spent ` +
            `${r2(per1k(beshCpu(b), f.requests))} CPU-s per 1,000 requests against the direct client's ` +
            `${r2(per1k(f.direct.client.cpuSeconds, f.requests))}: on ${res.machine.cpus} cores that alone caps BESH ` +
            `near ${int((res.machine.cpus * 1000) / per1k(beshCpu(b), f.requests))} requests/s.` +
            (res.fastFixed
              ? ` With \`CONCURRENCY_MODE=fixed\` (${limitStats(res.fastFixed, 0).max} in flight from the start) ` +
                `it reached ${r2(f.direct.pool.spanMs / res.fastFixed.pool.spanMs)} of the direct client; the ` +
                `adaptive limit peaked at ${limitStats(b, 0).max}.`
              : '')
          : undefined,
    });
  }
  if (largest) {
    const first = bigRuns[0];
    for (const p of ['api', 'worker'] as const) {
      const peak = largest.besh.memory[`${p}PeakMb`];
      out.push({
        what: `${p === 'api' ? 'API' : 'Worker'} peak RSS < 300 MB, ${int(largest.requests)} requests`,
        measured: mb(peak),
        ok: largest.requests >= 50_000 ? peak < 300 : null,
        why:
          peak >= 300 ? `${mb(largest.besh.memory[`${p}IdleMb`])} before the batch was created` : undefined,
      });
      if (first !== largest) {
        const base = first.besh.memory[`${p}PeakMb`];
        out.push({
          what: `${p === 'api' ? 'API' : 'Worker'} peak RSS not growing with batch size (≤ +20%)`,
          measured: `${mb(base)} at ${int(first.requests)} → ${mb(peak)} at ${int(largest.requests)}`,
          ok: peak <= base * 1.2,
        });
      }
    }
  }
  const singles = res.utilisation;
  if (singles.length) {
    const worst = singles.reduce((a, b) => (startMs(b.besh) > startMs(a.besh) ? b : a));
    const s = startMs(worst.besh);
    const b = worst.besh.batches[0];
    out.push({
      what: 'Start latency (create → first upstream request) < 1 s, every single batch',
      measured: `worst ${sec(s)} (${int(worst.requests)}, ${worst.pool})`,
      ok: s < 1000,
      why:
        s >= 1000
          ? `The batch was first seen in_progress ${sec((b.statusAt.in_progress ?? NaN) - b.createdAt)} after create ` +
            `(polled every 200 ms); validation reads the whole file first`
          : undefined,
    });
  }
  if (largest) {
    const f = finishMs(largest.besh);
    const b = largest.besh.batches[0];
    out.push({
      what: `Finish latency (last answer → completed) < 3 s, ${int(largest.requests)} requests`,
      measured: sec(f),
      ok: largest.requests >= 50_000 ? f < 3000 : null,
      why:
        f >= 3000
          ? `Finalizing was first seen ${sec((b.statusAt.finalizing ?? NaN) - largest.besh.pool.lastAt)} after ` +
            `the last answer, completed ${sec(b.statusAt.completed - (b.statusAt.finalizing ?? NaN))} later`
          : undefined,
    });
  }
  if (res.concurrent) {
    const c = res.concurrent;
    const u = utilisation(c);
    out.push({
      what: `${c.batches} batches at once share the pool without leaving it idle (utilisation ≥ 0.90)`,
      measured: `${r2(u)} (mean busy ${pct(c.besh.pool.meanBusy)})`,
      ok: u >= 0.9,
      why:
        u < 0.9
          ? `${slow(c)} The batches were first seen in_progress ${c.besh.batches
              .map((b) => sec((b.statusAt.in_progress ?? NaN) - b.createdAt))
              .join(', ')} after their create.`
          : undefined,
    });
  }
  return out;
}

/** A mix case's measured batches as a comparison, for the console line, the plot and the notes. */
export function mixComparison(c: MixCase, r: MixRun, pool: string): Comparison {
  return {
    pool: `${pool}, mix ${c.id} (${c.title}), ${r.mode}`,
    slots: c.slots,
    requests: c.requests,
    batches: c.measured.length,
    direct: c.direct,
    besh: r.measured,
  };
}

/** When the latency doubled in a run, in seconds after that run's first request at the pool. */
const doubledAt = (r: { faultAt?: number; pool: { firstAt: number } }) =>
  r.faultAt === undefined ? '—' : sec(r.faultAt - r.pool.firstAt);

/** Issue 12: the request mix (part 1), the lean path (part 2), short batches (part 4). */
function targets12(res: Results): Target[] {
  const out: Target[] = [];
  for (const c of res.mix?.cases ?? []) {
    for (const r of c.runs) {
      const cmp = mixComparison(c, r, res.mix!.pool);
      const u = utilisation(cmp);
      const lim = limitDuring(r.measured);
      const b = r.measured;
      out.push({
        what: `Mix ${c.id}, ${c.title} (${code(r.mode)}): utilisation ≥ 0.90`,
        measured: r2(u),
        ok: u >= 0.9,
        why:
          u < 0.9
            ? `The adaptive limit was ${int(lim.atCreate)} when the measured batch was created, ${int(lim.mean)} on ` +
              `average and ${int(lim.peak)} at its peak over BESH's pool span, against ${c.slots} slots; ` +
              `${int(lim.meanInFlight)} in flight on average (direct client: ${c.direct.concurrency}). The pool was ` +
              `${pct(b.pool.meanBusy)} busy (direct ${pct(c.direct.pool.meanBusy)}), ramp ${sec(b.pool.rampMs)} ` +
              `(direct ${sec(c.direct.pool.rampMs)}), tail ${sec(b.pool.tailMs)} (direct ` +
              `${sec(c.direct.pool.tailMs)}); the machine's CPU was ${pct(b.machineBusy)} busy, BESH's processes ` +
              `spent ${r2(per1k(beshCpu(b), c.requests))} CPU-s per 1,000 requests.` +
              (b.faultAt === undefined
                ? ''
                : ` Latency doubled ${doubledAt(b)} after the first request (direct: ${doubledAt(c.direct)}).`)
            : undefined,
      });
    }
  }
  const big = res.pools.find((p) => p.viaNginx);
  const thousand = res.utilisation.find((c) => c.pool === big?.name && c.requests === 1000);
  if (thousand) {
    const u = utilisation(thousand);
    out.push({
      what: `Pool utilisation ≥ 0.93, 1,000 requests, ${thousand.pool}`,
      measured: r2(u),
      ok: u >= 0.93,
      why:
        u < 0.93
          ? `Start ${sec(startMs(thousand.besh))}, ramp ${sec(thousand.besh.pool.rampMs)} (direct ` +
            `${sec(thousand.direct.pool.rampMs)}), tail ${sec(thousand.besh.pool.tailMs)} (direct ` +
            `${sec(thousand.direct.pool.tailMs)}), finish ${sec(finishMs(thousand.besh))}.`
          : undefined,
    });
  }
  if (res.short) {
    const c = res.short;
    const extra = c.besh.wallMs - directWallMs(c);
    out.push({
      what: `${int(c.requests)}-request batch, ${c.pool}: create → completed within 0.5 s of the direct client`,
      measured: `+${sec(extra)} (${sec(c.besh.wallMs)} vs ${sec(directWallMs(c))})`,
      ok: extra <= 500,
      why:
        extra > 500
          ? `Start (create → first request) ${sec(startMs(c.besh))}, pool span ${sec(c.besh.pool.spanMs)} ` +
            `(direct ${sec(c.direct.pool.spanMs)}), finish (last answer → completed, polled every 200 ms) ` +
            `${sec(finishMs(c.besh))}.`
          : undefined,
    });
  }
  if (res.fast) {
    const f = res.fast;
    const k = per1k(beshCpu(f.besh), f.requests);
    const c = f.besh.cpu.batch;
    out.push({
      what: 'Infinitely fast upstream: ≤ 0.15 CPU-s per 1,000 requests, all BESH processes',
      measured: r2(k),
      ok: k <= 0.15,
      why:
        k > 0.15
          ? `API ${r2(per1k(c.api, f.requests))}, worker ${r2(per1k(c.worker, f.requests))}, Temporal ` +
            `${r2(per1k(c.temporal, f.requests))}, PostgreSQL ${r2(per1k(c.postgres, f.requests))}.`
          : undefined,
    });
  }
  return out;
}

export function renderMarkdown(res: Results, svgRelPath: string): string {
  const m = res.machine;
  const targetRows = targets(res);
  const targetRows12 = targets12(res);
  const poolRows = res.pools.map((p) => {
    const meanService =
      p.baseLatencyMs + (p.perTokenMs * (res.workload.outputTokens[0] + res.workload.outputTokens[1])) / 2;
    return [
      p.name,
      p.capacity ? `${p.replicas} × ${p.capacity} = ${p.slots}` : `${p.replicas} × unlimited`,
      `${p.baseLatencyMs} ms + ${p.perTokenMs} ms × max_tokens (mean ${int(meanService)} ms)`,
      p.slots ? `≈ ${int((p.slots * 1000) / meanService)} req/s` : 'this machine',
      p.viaNginx ? 'nginx (`nginx/nginx-8gpu.conf`)' : 'straight to the replica',
      Object.entries(p.beshEnv)
        .map(([k, v]) => `\`${k}=${v}\``)
        .join(' ') || 'defaults',
    ];
  });
  const util = res.utilisation.map((c) => [
    c.pool,
    int(c.requests),
    `${sec(c.direct.pool.spanMs)} (${c.direct.concurrency} at once)`,
    sec(c.besh.pool.spanMs),
    `**${r2(utilisation(c))}**`,
    sec(c.besh.wallMs),
    r2(c.direct.pool.spanMs / c.besh.wallMs),
    `${pct(c.besh.pool.meanBusy)} / ${pct(c.direct.pool.meanBusy)}`,
    `${pct(c.besh.machineBusy)} / ${pct(c.direct.machineBusy)}`,
  ]);
  const lat = [...res.utilisation, ...(res.concurrent ? [res.concurrent] : [])].map((c) => {
    const lim = limitStats(c.besh, c.slots);
    return [
      c.pool,
      `${int(c.requests)}${c.batches > 1 ? ` (${c.batches} batches)` : ''}`,
      sec(startMs(c.besh)),
      sec(finishMs(c.besh)),
      `${sec(c.besh.pool.rampMs)} / ${sec(c.direct.pool.rampMs)}`,
      `${sec(c.besh.pool.dipsMs)} / ${sec(c.direct.pool.dipsMs)}`,
      `${sec(c.besh.pool.tailMs)} / ${sec(c.direct.pool.tailMs)}`,
      `${Number.isFinite(lim.reachedMs) ? sec(lim.reachedMs) : 'never'}; peak ${lim.max}, ${lim.atEnd} at the end`,
    ];
  });
  const all = [
    ...res.utilisation,
    ...(res.concurrent ? [res.concurrent] : []),
    ...(res.fast ? [res.fast] : []),
  ];
  const cost = all.map((c) => {
    const b = c.besh;
    const k = (x: number) => r2(per1k(x, c.requests));
    return [
      c.pool,
      `${int(c.requests)}${c.batches > 1 ? ` (${c.batches} batches)` : ''}`,
      k(b.cpu.batch.api),
      k(b.cpu.batch.worker),
      k(b.cpu.batch.temporal),
      k(b.cpu.batch.postgres),
      `**${k(beshCpu(b))}**`,
      k(c.direct.client.cpuSeconds),
      `${mb(b.memory.apiPeakMb)} (${mb(b.memory.apiIdleMb)})`,
      `${mb(b.memory.workerPeakMb)} (${mb(b.memory.workerIdleMb)})`,
      b.batches.map((x) => int(x.historyEvents)).join(', '),
      b.batches.map((x) => sec(x.uploadMs)).join(', '),
      b.batches.map((x) => sec(x.downloadMs)).join(', '),
    ];
  });
  const sections: string[] = [];
  sections.push(`# Benchmarks

Written by \`make bench\` (\`bench/run.ts\`, described in \`bench/README.md\`) on ${res.startedAt.slice(0, 10)}, in
${Math.round(res.durationS / 6) / 10} minutes${res.preset === 'full' ? '' : `, preset **${res.preset}** (not the full run: \`make bench\` replaces this file)`}.

- Machine: ${m.cpus} cores (${m.cpuModel}), ${m.memGiB} GiB, ${m.kernel}, Node ${m.node}; load average
  ${m.loadAvg.join(' / ')} at the start. Shared and noisy: every comparison is a ratio of two measurements
  taken side by side in this run.
- Reproduce: \`${res.command}\`
- Raw results: \`bench/out/results.json\`; process logs: \`bench/out/logs/\`.${res.error ? `\n\n**The run stopped early** (\`${res.error}\`): the tables below hold what was measured before.` : ''}

## Targets (issue 7)

${table(
  ['Target', 'Measured', ''],
  targetRows.map((t) => [t.what, t.measured, mark(t.ok)]),
)}

— means the size a target names was not run (smaller preset).`);

  if (targetRows12.length)
    sections.push(`## Targets (issue 12)

${table(
  ['Target', 'Measured', ''],
  targetRows12.map((t) => [t.what, t.measured, mark(t.ok)]),
)}`);

  sections.push(`## Setup

${table(['Pool', 'Slots', 'Service time per request', 'Ceiling', 'Path', 'BESH settings'], poolRows)}

- **Workload**: ${res.workload.files.map((f) => `${int(f.requests)} requests (${(f.bytes / 1e6).toFixed(1)} MB)`).join(', ')};
  chat requests with a system prompt and one or three turns, 2–6 KB per line, \`max_tokens\` uniform in
  ${res.workload.outputTokens[0]}–${res.workload.outputTokens[1]}.
- **BESH**: the API and one worker as their own processes from \`dist/\`, started fresh for every row (so the
  adaptive limit starts cold and peak RSS and CPU are that row's), PostgreSQL on 127.0.0.1, the Temporal dev
  server (SQLite, WAL). Upload, create, poll (every 200 ms) and download with the official \`openai\` SDK;
  every output line is checked (status 200, each \`custom_id\` once). \`CONCURRENCY_MODE\` is the default,
  \`adaptive\`; nothing is warmed up.
- **Direct client**: a minimal undici loop (\`bench/direct-client.ts\`) sending the same bodies over the same path,
  at the best of ${res.calibrations.map((c) => `${c.tried.map((t) => t.concurrency).join('/')} in flight (${c.pool}: ${c.best})`).join('; ')}, measured on the first input.
- **Measured at the pool**: the simulator replicas run in one child process that reads their counters every
  10 ms. The *pool span* runs from the first request received to the last answer sent; *busy* is the fraction of
  slots serving. Utilisation = direct pool span ÷ BESH pool span. *Ramp* is the time from the first request
  until the pool is ≥ ${pct(BUSY_THRESHOLD)} busy (over ${BUSY_WINDOW_MS} ms); *tail* is the time it stays under that at the end;
  *dips* add up the time under it in between.`);

  // A run of other jobs alone (`--sizes=` …) has no rows here.
  if (util.length)
    sections.push(`## Pool utilisation

${table(
  [
    'Pool',
    'Requests',
    'Direct client',
    'BESH pool span',
    'Utilisation',
    'BESH create → completed',
    'Direct ÷ create→completed',
    'Mean busy BESH / direct',
    'Machine CPU busy BESH / direct',
  ],
  util,
)}`);

  if (lat.length)
    sections.push(`## Latency, ramp and tail

${table(
  [
    'Pool',
    'Requests',
    'Start (create → first request)',
    'Finish (last answer → completed)',
    'Ramp BESH / direct',
    'Dips BESH / direct',
    'Tail BESH / direct',
    'Adaptive limit reached the slots',
  ],
  lat,
)}`);

  if (cost.length)
    sections.push(`## Cost

CPU-seconds per 1,000 requests from create to \`completed\` (upload and download excluded), peak RSS (VmHWM; in
brackets before the batch was created, after the upload), Temporal history events per batch. PostgreSQL is the
backends connected to the run's database plus the server's WAL writer, checkpointer and background writer.

${table(
  [
    'Pool',
    'Requests',
    'API',
    'Worker',
    'Temporal',
    'PostgreSQL',
    'BESH',
    'Direct client',
    'API peak RSS',
    'Worker peak RSS',
    'History events',
    'Upload',
    'Download',
  ],
  cost,
)}`);

  if (res.fast) {
    const f = res.fast;
    const directRps = rps(f.requests, f.direct.pool.spanMs);
    const row = (name: string, b: BeshRun) => {
      const k = (x: number) => r2(per1k(x, f.requests));
      const c = b.cpu.batch;
      return [
        name,
        int(rps(f.requests, b.pool.spanMs)),
        `**${r2(rps(f.requests, b.pool.spanMs) / directRps)}**`,
        int(rps(f.requests, b.wallMs)),
        `${k(beshCpu(b))} (API ${k(c.api)}, worker ${k(c.worker)}, Temporal ${k(c.temporal)}, PostgreSQL ${k(c.postgres)})`,
        `${limitStats(b, 0).max}`,
      ];
    };
    sections.push(`## Infinitely fast upstream

One replica with unlimited slots and 0 ms latency, ${int(f.requests)} requests: the throughput is what this
machine's CPU allows. The fixed-concurrency row (\`MAX_WORKERS\` in flight from the start) is a diagnostic: it
separates the orchestration's own cost from what the adaptive limit makes of a 0 ms upstream.

${table(
  [
    '',
    'Requests/s (pool span)',
    '÷ direct',
    'Requests/s (create → completed)',
    'CPU-s per 1,000 requests',
    'Peak in flight',
  ],
  [
    [
      `Direct client`,
      int(directRps),
      '1',
      '—',
      r2(per1k(f.direct.client.cpuSeconds, f.requests)),
      String(f.direct.concurrency),
    ],
    row('BESH (adaptive, the default)', f.besh),
    ...(res.fastFixed ? [row('BESH, `CONCURRENCY_MODE=fixed`', res.fastFixed)] : []),
    ...(res.fastProcesses ? [row('BESH, `WORKER_PROCESSES=2` (adaptive)', res.fastProcesses)] : []),
  ],
)}`);
  }
  if (res.stores) {
    const { local, s3, traffic } = res.stores;
    const n = local.requests;
    const perK = (x: number) => (x * 1000) / n;
    const s3Requests = Object.values(traffic.requests).reduce((a, x) => a + x, 0);
    const row = (name: string, c: Comparison, requests: string, moved: string) => [
      name,
      `**${r2(utilisation(c))}**`,
      sec(c.besh.wallMs),
      r2(per1k(beshCpu(c.besh), n)),
      mb(c.besh.memory.workerPeakMb),
      requests,
      moved,
    ];
    sections.push(`## Blob stores: local and S3

The same ${int(n)}-request batch on ${local.pool}, once with \`BLOB_STORE=local\` and once with \`BLOB_STORE=s3\`
against moto's S3 server on this machine, through a proxy that counts requests and body bytes (upload, run and
download included). The input file is ${(traffic.inputBytes / 1e6).toFixed(1)} MB.

${table(
  [
    'Store',
    'Utilisation',
    'create → completed',
    'CPU-s per 1,000 requests',
    'Worker peak RSS',
    'S3 requests per 1,000 lines',
    'S3 bytes up / down',
  ],
  [
    row('local (one volume)', local, '—', '—'),
    row(
      'S3 (moto)',
      s3,
      r2(perK(s3Requests)),
      `${(traffic.bytesUp / 1e6).toFixed(1)} MB / ${(traffic.bytesDown / 1e6).toFixed(1)} MB`,
    ),
  ],
)}

S3 requests per 1,000 lines by operation: ${Object.entries(traffic.requests)
      .filter(([, x]) => x > 0)
      .sort(([, a], [, b]) => b - a)
      .map(([op, x]) => `${op} ${r2(perK(x))}`)
      .join(', ')}. Bytes moved beyond the input itself: ${(
      (traffic.bytesUp + traffic.bytesDown - traffic.inputBytes) /
      1e6
    ).toFixed(
      1,
    )} MB (the input read back by the chunks, segments written and read once, the output written and
downloaded).`);
  }
  if (res.concurrent) {
    const c = res.concurrent;
    const t0 = Math.min(...c.besh.batches.map((b) => b.createdAt));
    sections.push(`## Several batches at once

${c.batches} batches of ${int(c.besh.batches[0]?.requests ?? 0)} created together on ${c.pool}; the direct client sends
all ${int(c.requests)} bodies at once. Pool span: BESH ${sec(c.besh.pool.spanMs)}, direct ${sec(c.direct.pool.spanMs)},
utilisation **${r2(utilisation(c))}**; the pool was ${pct(c.besh.pool.meanBusy)} busy on average over BESH's span.

${table(
  ['Batch', 'Requests', 'Created (after the first)', 'First seen in_progress', 'create → completed'],
  c.besh.batches.map((b) => [
    b.id,
    int(b.requests),
    sec(b.createdAt - t0),
    sec((b.statusAt.in_progress ?? NaN) - b.createdAt),
    sec(b.statusAt.completed - b.createdAt),
  ]),
)}`);
  }

  if (res.short) {
    const c = res.short;
    sections.push(`## Short batch

One batch of ${int(c.requests)} requests on ${c.pool}: BESH from \`batches.create\` to the poll (every 200 ms) that
first sees \`completed\`, against the direct client's own time from its first request sent to its last answer read.

${table(
  [
    'Pool',
    'Requests',
    'Direct client (first sent → last answer)',
    'BESH create → completed',
    'Difference',
    'Start (create → first request)',
    'Pool span BESH / direct',
    'Finish (last answer → completed)',
  ],
  [
    [
      c.pool,
      int(c.requests),
      `${sec(directWallMs(c))} (${c.direct.concurrency} at once)`,
      sec(c.besh.wallMs),
      `**+${sec(c.besh.wallMs - directWallMs(c))}**`,
      sec(startMs(c.besh)),
      `${sec(c.besh.pool.spanMs)} / ${sec(c.direct.pool.spanMs)}`,
      sec(finishMs(c.besh)),
    ],
  ],
)}`);
  }
  if (res.mix?.cases.length) {
    const mix = res.mix;
    const first = mix.cases[0];
    const rows = mix.cases.flatMap((c) =>
      c.runs.map((r) => {
        const b = r.measured;
        const lim = limitDuring(b);
        return [
          `${c.id}. ${c.title}`,
          code(r.mode),
          sec(c.direct.pool.spanMs),
          sec(b.pool.spanMs),
          `**${r2(utilisation(mixComparison(c, r, mix.pool)))}**`,
          sec(b.wallMs),
          int(lim.atCreate),
          `${int(lim.mean)} / ${int(lim.peak)}`,
          int(lim.meanInFlight),
          `${pct(b.pool.meanBusy)} / ${pct(c.direct.pool.meanBusy)}`,
          `${pct(b.machineBusy)} / ${pct(c.direct.machineBusy)}`,
          r2(per1k(beshCpu(b), c.requests)),
        ];
      }),
    );
    const doubling = mix.cases.filter((c) => c.direct.faultAt !== undefined);
    sections.push(`## Request mix

Does BESH's adaptive concurrency limit follow a change of request mix (issue 12)? Each case runs on ${mix.pool}
(${int(first.slots)} slots, through nginx, the same settings as the rows above) with one BESH stack (API and worker)
per case and mode, kept for all the case's batches: the worker's state from the batch before is the point. Each
case runs twice: with the client-side signal alone, and with \`VLLM_METRICS_URLS\` naming every replica's
\`/metrics\` (\`vllm:num_requests_running\`, \`vllm:num_requests_waiting\`). The direct client runs the measured
batches only (it keeps no state), at ${first.direct.concurrency / first.measured.length} in flight per batch.
Utilisation = direct pool span ÷ BESH pool span of the measured batches.

Inputs, ${int(Object.values(mix.inputs)[0]?.requests ?? 0)} requests each: ${Object.entries(mix.inputs)
      .map(([k, w]) => `**${k}**: ${w.what}`)
      .join('; ')}.

- **a. fast then slow**: a *fast* batch runs to completion, then a *slow* batch is measured.
- **b. slow then fast**: the reverse; the *fast* batch is measured. At ${int(first.slots)} slots it asks for
  thousands of requests per second, so this machine's CPU may bind before the pool does (see the CPU columns).
- **c. embeddings and chat at once**: an *embeddings* batch (\`/v1/embeddings\`) and a *slow* chat batch created
  together; the direct client sends both at once; utilisation over the combined span.
- **d. latency doubles halfway**: one *chat* batch; when half its requests have been answered at the pool, every
  replica's service time doubles (\`POST /sim/faults {"latencyFactor": 2}\`), for the direct client's run and
  BESH's alike, and is set back to 1 after each run.${
    doubling.length
      ? ` It doubled ${doubling
          .map(
            (c) =>
              `${doubledAt(c.direct)} (direct), ${c.runs.map((r) => `${doubledAt(r.measured)} (${code(r.mode)})`).join(', ')}`,
          )
          .join('; ')} after the first request.`
      : ''
  }

*Limit* is \`besh_upstream_concurrency_limit\` scraped every 250 ms: its value when the measured batch was created
(what the worker carried over), then its mean and peak and the mean in flight over BESH's pool span.

${table(
  [
    'Case',
    'Limit signal',
    'Direct pool span',
    'BESH pool span',
    'Utilisation',
    'BESH create → completed',
    'Limit at create',
    'Limit mean / peak',
    'Mean in flight',
    'Mean busy BESH / direct',
    'Machine CPU busy BESH / direct',
    'BESH CPU-s per 1,000',
  ],
  rows,
)}`);
  }

  sections.push(`## Throughput over time

Answers per second leaving the pool (250 ms buckets) for BESH and for the direct client, with BESH's adaptive
concurrency limit (scraped from the worker's metrics every 250 ms) against the pool's slots. Time 0 is the batch
create for BESH and the first request for the direct client.

![Throughput over time](${svgRelPath})`);

  const misses = [...targetRows, ...targetRows12].filter((t) => t.ok === false);
  sections.push(`## Notes

${
  misses.length
    ? misses.map((t) => `- **Missed: ${t.what}** — measured ${t.measured}. ${t.why ?? ''}`.trim()).join('\n')
    : '- Every target that was run held.'
}`);
  return sections.join('\n\n') + '\n';
}
