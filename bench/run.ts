/**
 * `make bench`: how close BESH drives a simulated vLLM pool to what the pool can do, side by side with a
 * minimal direct client in the same run, and at what cost in CPU and memory. See bench/README.md.
 *
 *   make bench                    # the full run (about 10 minutes on 2 cores); writes BENCHMARKS.md, bench/throughput.svg
 *   make bench ARGS=--quick       # small sizes (about 2.5 minutes), for development; writes under bench/out/
 */
import { Client, Connection } from '@temporalio/client';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Client as PgClient } from 'pg';
import { projectRoot } from '../src/paths';
import { startDevServer, type DevServer } from '../temporal/dev-server';
import { freePort } from '../test/support/ports';
import { createTestBucket, FaultProxy, s3Env, stopMoto } from '../test/support/s3';
import { BeshStack, type StackContext } from './besh';
import { runDirect } from './direct-client';
import { buckets, summarize } from './metrics';
import { renderSvg } from './plot';
import { Pool, type FaultAt } from './pool';
import { PostgresCpu } from './postgres';
import { machineJiffies, Processes, startNginx } from './processes';
import { mixComparison, printLine, renderMarkdown } from './report';
import type {
  BeshRun,
  Calibration,
  Comparison,
  DirectRun,
  MixCase,
  MixJob,
  MixRun,
  PoolInfo,
  Results,
  S3Traffic,
} from './results';
import { MAX_OUTPUT_TOKENS, MIN_OUTPUT_TOKENS, readBodies, writeWorkload, type Workload } from './workload';

const PRESETS = {
  full: {
    sizes: '1000,10000,50000',
    oneReplicaSizes: '1000,10000',
    concurrent: '4x5000',
    fast: '10000',
    s3: '10000',
    short: '100',
    mix: '4000',
  },
  quick: {
    sizes: '1000,2000',
    oneReplicaSizes: '500,1000',
    concurrent: '4x500',
    fast: '2000',
    s3: '2000',
    short: '100',
    mix: '1000',
  },
};
/** The mix job's fast and slow chat requests: 52 ms and 490–640 ms of service at 40 ms + 1.5 ms × max_tokens. */
const FAST_TOKENS: [number, number] = [8, 8];
const SLOW_TOKENS: [number, number] = [300, 400];
/** A replica's faults between the mix job's runs: service times as configured. */
const NORMAL_LATENCY = { latencyFactor: 1 };
const ADMIN_DB_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    sizes: { type: 'string' },
    'one-replica-sizes': { type: 'string' },
    concurrent: { type: 'string' },
    fast: { type: 'string' },
    /** Requests of the batch run on both blob stores (local, then S3 on a moto server); 0 skips it. */
    s3: { type: 'string' },
    /** Requests of a short batch on the multi-replica pool (create → completed against the direct client). */
    short: { type: 'string' },
    /** Requests per batch of the request-mix cases (issue 12); 0 skips them. */
    mix: { type: 'string' },
    replicas: { type: 'string', default: '8' },
    capacity: { type: 'string', default: '32' },
    'base-latency-ms': { type: 'string', default: '40' },
    'per-token-ms': { type: 'string', default: '1.5' },
    md: { type: 'string' },
    /** V8 CPU profiles of every API and worker, in bench/out/profiles/ (slows them down a little). */
    profile: { type: 'boolean', default: false },
    svg: { type: 'string' },
    /** Rewrite the report and plot from bench/out/results.json without measuring anything. */
    'render-only': { type: 'boolean', default: false },
  },
});
const preset = args.quick ? 'quick' : 'full';
const defaults = PRESETS[preset];
const list = (s: string) => (s.trim() ? s.split(',').map((x) => Number(x.trim())) : []);
const sizes = list(args.sizes ?? defaults.sizes);
const oneReplicaSizes = list(args['one-replica-sizes'] ?? defaults.oneReplicaSizes);
const [concurrentBatches, concurrentSize] = (args.concurrent ?? defaults.concurrent).split('x').map(Number);
const fastSize = Number(args.fast ?? defaults.fast);
const s3Size = Number(args.s3 ?? defaults.s3);
const shortSize = Number(args.short ?? defaults.short);
const mixSize = Number(args.mix ?? defaults.mix);
const custom =
  args.quick ||
  [args.sizes, args['one-replica-sizes'], args.concurrent, args.fast, args.s3, args.short, args.mix].some(
    (x) => x !== undefined,
  );
// Only the full run replaces the committed report; smaller ones land beside the raw results.
const outDir = path.join(projectRoot, 'bench', 'out');
const mdPath = path.resolve(args.md ?? (custom ? path.join(outDir, 'BENCHMARKS.md') : 'BENCHMARKS.md'));
const svgPath = path.resolve(
  args.svg ?? (custom ? path.join(outDir, 'throughput.svg') : path.join('bench', 'throughput.svg')),
);
const latency = { baseLatencyMs: Number(args['base-latency-ms']), perTokenMs: Number(args['per-token-ms']) };
const replicas = Number(args.replicas);
const capacity = Number(args.capacity);

for (const [name, n] of Object.entries({
  replicas,
  capacity,
  concurrentBatches,
  concurrentSize,
  fastSize,
  s3Size,
  shortSize,
  mixSize,
})) {
  if (!Number.isFinite(n) || n < 0) throw new Error(`invalid --${name}`);
}

const logDir = path.join(outDir, 'logs');
const procs = new Processes(logDir);
const cleanups: Array<() => Promise<unknown>> = [];
let cleaning: Promise<void> | null = null;
/** Idempotent; runs on success, failure and Ctrl-C alike. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await procs.stopAll().catch((e: unknown) => console.error('cleanup:', e)); // before what they use goes
    for (const fn of cleanups.reverse()) await fn().catch((e: unknown) => console.error('cleanup:', e));
  })();
  return cleaning;
}

async function main(): Promise<void> {
  const started = Date.now();
  fs.rmSync(logDir, { recursive: true, force: true });
  fs.mkdirSync(logDir, { recursive: true });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'besh-bench-'));
  cleanups.push(async () => fs.rmSync(work, { recursive: true, force: true }));

  if (!fs.existsSync(path.join(projectRoot, 'dist', 'main', 'worker.js')))
    throw new Error('dist/ is missing: run `make build` (or `make bench`, which builds first)');

  // Inputs first: generating 200 MB takes a few seconds and must not overlap a measurement.
  const t = Date.now();
  const inputs = new Map<number, Workload>();
  for (const n of new Set([...sizes, ...oneReplicaSizes, ...[fastSize, s3Size, shortSize].filter(Boolean)])) {
    inputs.set(n, writeWorkload(path.join(work, `input-${n}.jsonl`), n, n, `req${n}`));
  }
  const concurrentInputs = Array.from({ length: concurrentSize ? concurrentBatches : 0 }, (_, i) =>
    writeWorkload(path.join(work, `concurrent-${i}.jsonl`), concurrentSize, 1000 + i, `b${i}`),
  );
  const files = [...inputs.values(), ...concurrentInputs];
  const mixInputs = mixSize ? writeMixInputs(work, mixSize) : null;
  console.log(
    `inputs: ${[...files, ...Object.values(mixInputs ?? {})]
      .map((w) => `${w.requests} requests (${(w.bytes / 1e6).toFixed(1)} MB)`)
      .join(', ')} in ${((Date.now() - t) / 1000).toFixed(1)} s`,
  );

  // One database, Temporal server and DATA_DIR for the whole run; API and worker are fresh per scenario.
  const dbName = `besh_bench_${randomBytes(4).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${dbName}`);
  cleanups.push(() => adminQuery(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`));
  const dbUrl = new URL(ADMIN_DB_URL);
  dbUrl.pathname = `/${dbName}`;
  const devServer: DevServer = await startDevServer({
    port: await freePort(),
    uiPort: null,
    dbFile: path.join(work, 'temporal.sqlite'),
    logFile: path.join(logDir, 'temporal.log'),
  });
  cleanups.push(() => devServer.stop());
  const connection = await Connection.connect({ address: devServer.address });
  cleanups.push(() => connection.close());
  const postgres = await PostgresCpu.connect(ADMIN_DB_URL, dbName);
  cleanups.push(() => postgres.close());
  const apiKey = `sk-bench-${randomBytes(12).toString('hex')}`;
  const ctxBase: Omit<StackContext, 'nginxPid'> = {
    procs,
    env: {
      DATA_DIR: path.join(work, 'data'),
      DATABASE_URL: dbUrl.toString(),
      TEMPORAL_ADDRESS: devServer.address,
      // An operator key: the bench also scrapes the worker's /metrics with it.
      BESH_OPERATOR_KEYS: apiKey,
      // One worker process, as every row before WORKER_PROCESSES; the infinitely fast row also runs two.
      WORKER_PROCESSES: '1',
    },
    apiKey,
    temporal: new Client({ connection }),
    temporalPid: devServer.process.pid!,
    postgres,
    profileDir: args.profile ? path.join(outDir, 'profiles') : undefined,
  };
  if (args.profile) fs.rmSync(path.join(outDir, 'profiles'), { recursive: true, force: true });

  const results: Results = {
    preset: custom && !args.quick ? 'custom' : preset,
    command: process.argv.length > 2 ? `make bench ARGS="${process.argv.slice(2).join(' ')}"` : 'make bench',
    startedAt: new Date(started).toISOString(),
    durationS: 0,
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
      memGiB: Math.round(os.totalmem() / 2 ** 30),
      kernel: `${os.type()} ${os.release()}`,
      node: process.version,
      loadAvg: os.loadavg().map((x) => +x.toFixed(2)),
    },
    workload: {
      files: files.map((w) => ({ requests: w.requests, bytes: w.bytes })),
      outputTokens: [MIN_OUTPUT_TOKENS, MAX_OUTPUT_TOKENS],
    },
    pools: [],
    calibrations: [],
    utilisation: [],
    concurrent: null,
    fast: null,
    fastFixed: null,
    fastProcesses: null,
    stores: null,
    short: null,
    mix: null,
  };
  const save = () => {
    results.durationS = Math.round((Date.now() - started) / 1000);
    fs.writeFileSync(path.join(outDir, 'results.json'), JSON.stringify(results, null, 1) + '\n');
  };

  /** One pool: calibrate the direct client, then direct and BESH side by side for each input. */
  const onPool = async (
    info: Omit<PoolInfo, 'slots'>,
    jobs: { inputs: Workload[]; kind: 'single' | 'short' | 'concurrent' | 'fast' | 'stores' | 'mix' }[],
    candidates: (slots: number) => number[],
  ) => {
    const pool = await Pool.start(info, procs);
    const poolInfo: PoolInfo = { ...info, slots: pool.slots };
    results.pools.push(poolInfo);
    let nginx = null;
    let origin = `http://127.0.0.1:${pool.ports[0]}`;
    if (info.viaNginx) {
      const port = await freePort();
      nginx = await startNginx(procs, path.join(work, `nginx-${results.pools.length}`), port, pool.ports);
      origin = `http://127.0.0.1:${port}`;
    }
    const ctx: StackContext = { ...ctxBase, nginxPid: nginx?.pid ?? null };
    try {
      const calibration: Calibration = {
        pool: info.name,
        requests: jobs[0].inputs[0].requests,
        tried: [],
        best: 0,
      };
      const first = await readBodies(jobs[0].inputs[0].file);
      // Opens nginx's and the replicas' connections, so the first measured run does not pay for them.
      await runDirect(origin, '/v1/chat/completions', first.slice(0, 200), Math.max(8, pool.slots));
      let firstDirect: DirectRun | null = null;
      for (const c of candidates(pool.slots)) {
        const run = await direct(pool, origin, [{ path: jobs[0].inputs[0].endpoint, bodies: first }], c);
        calibration.tried.push({ concurrency: c, spanMs: run.pool.spanMs });
        printLine(`[${info.name}] calibration: ${c} at once → ${(run.pool.spanMs / 1000).toFixed(2)} s`);
        if (!firstDirect || run.pool.spanMs < firstDirect.pool.spanMs) firstDirect = run;
      }
      calibration.best = firstDirect!.concurrency;
      results.calibrations.push(calibration);
      for (const [j, job] of jobs.entries()) {
        if (job.kind === 'mix') {
          await mix(ctx, pool, origin, info, calibration.best, mixInputs!, (m) => {
            results.mix = m;
            save();
          });
          continue;
        }
        const bodies =
          j === 0 ? first : (await Promise.all(job.inputs.map((w) => readBodies(w.file)))).flat();
        const d =
          j === 0
            ? firstDirect!
            : await direct(pool, origin, [{ path: job.inputs[0].endpoint, bodies }], calibration.best);
        // Log file names: ASCII only.
        const label = `${info.name.replace(/×/g, 'x').replace(/[^\w.-]+/g, '')}-${job.kind}-${bodies.length}`;
        // A stuck batch must not hang the run: far more than BESH ever needs, then fail with what we have.
        const deadlineMs = 120_000 + 10 * d.pool.spanMs;
        const b = await besh(ctx, pool, `${origin}/v1`, info.beshEnv, job.inputs, label, deadlineMs);
        const cmp: Comparison = {
          pool: info.name,
          slots: pool.slots,
          requests: bodies.length,
          batches: job.inputs.length,
          direct: d,
          besh: b,
        };
        printLine(cmp);
        if (job.kind === 'single') results.utilisation.push(cmp);
        else if (job.kind === 'short') results.short = cmp;
        else if (job.kind === 'concurrent') results.concurrent = cmp;
        else if (job.kind === 'fast') results.fast = cmp;
        else {
          // The same batch again with its files and checkpoint segments in S3, counted at a proxy in front.
          const s3 = await benchS3();
          const before = s3.traffic();
          const onS3 = await besh(
            ctx,
            pool,
            `${origin}/v1`,
            { ...info.beshEnv, ...s3.env },
            job.inputs,
            `${label}-s3`,
            deadlineMs,
          );
          const after = s3.traffic();
          results.stores = {
            local: cmp,
            s3: { ...cmp, besh: onS3 },
            traffic: {
              requests: Object.fromEntries(
                Object.entries(after.requests).map(([op, n]) => [op, n - (before.requests[op] ?? 0)]),
              ),
              bytesUp: after.bytesUp - before.bytesUp,
              bytesDown: after.bytesDown - before.bytesDown,
              inputBytes: job.inputs.reduce((n, w) => n + w.bytes, 0),
            },
          };
          printLine({ ...cmp, pool: `${info.name}, BLOB_STORE=s3 (moto)`, besh: onS3 });
        }
        save();
        if (job.kind === 'fast') {
          // Diagnostic: the same batch at a fixed MAX_WORKERS tells the orchestration's own cost apart from
          // what the adaptive limit makes of a 0 ms upstream.
          const env = { ...info.beshEnv, CONCURRENCY_MODE: 'fixed' };
          results.fastFixed = await besh(
            ctx,
            pool,
            `${origin}/v1`,
            env,
            job.inputs,
            `${label}-fixed`,
            deadlineMs,
          );
          printLine({ ...cmp, pool: `${info.name}, CONCURRENCY_MODE=fixed`, besh: results.fastFixed });
          save();
          // Where this machine's CPU is the limit, a second worker process per host is what WORKER_PROCESSES buys.
          results.fastProcesses = await besh(
            ctx,
            pool,
            `${origin}/v1`,
            { ...info.beshEnv, WORKER_PROCESSES: '2' },
            job.inputs,
            `${label}-processes`,
            deadlineMs,
          );
          printLine({ ...cmp, pool: `${info.name}, WORKER_PROCESSES=2`, besh: results.fastProcesses });
          save();
        }
      }
    } finally {
      if (nginx) await procs.stop(nginx);
      await procs.stop(pool.child);
    }
  };

  const slotsTimes = (factors: number[]) => (slots: number) => factors.map((f) => Math.round(slots * f));
  const pools: { info: Omit<PoolInfo, 'slots'>; jobs: Parameters<typeof onPool>[1] }[] = [];
  if (sizes.length || concurrentInputs.length || s3Size || shortSize || mixInputs) {
    // docker-compose.8gpu.yml's settings for a multi-replica pool: a higher ceiling, more batches at once.
    const beshEnv: Record<string, string> =
      replicas > 1 ? { MAX_WORKERS: '1024', MAX_CONCURRENT_BATCHES: '8' } : {};
    pools.push({
      info: { name: `${replicas}×${capacity}`, replicas, capacity, ...latency, viaNginx: true, beshEnv },
      jobs: [
        ...sizes.map((n) => ({ inputs: [inputs.get(n)!], kind: 'single' as const })),
        ...(concurrentInputs.length ? [{ inputs: concurrentInputs, kind: 'concurrent' as const }] : []),
        ...(s3Size ? [{ inputs: [inputs.get(s3Size)!], kind: 'stores' as const }] : []),
        // Its cases change the replicas' latency (and set it back after each run).
        ...(mixInputs ? [{ inputs: [mixInputs.slow], kind: 'mix' as const }] : []),
        // Last: 100 requests say little about the direct client's best concurrency, so a run without the larger
        // inputs calibrates it on the mix's instead.
        ...(shortSize ? [{ inputs: [inputs.get(shortSize)!], kind: 'short' as const }] : []),
      ],
    });
  }
  if (oneReplicaSizes.length) {
    pools.push({
      info: { name: `1×${capacity}`, replicas: 1, capacity, ...latency, viaNginx: false, beshEnv: {} },
      jobs: oneReplicaSizes.map((n) => ({ inputs: [inputs.get(n)!], kind: 'single' as const })),
    });
  }
  try {
    for (const p of pools) await onPool(p.info, p.jobs, slotsTimes([1, 1.25, 1.5]));
    if (fastSize) {
      // Capacity 0 = unlimited slots, 0 ms: whatever limits throughput is on this machine, not in the pool.
      const info = {
        name: '1×∞ (0 ms)',
        replicas: 1,
        capacity: 0,
        baseLatencyMs: 0,
        perTokenMs: 0,
        viaNginx: false,
        beshEnv: {},
      };
      await onPool(info, [{ inputs: [inputs.get(fastSize)!], kind: 'fast' }], () => [16, 64, 256]);
    }
  } catch (err) {
    // Report what was measured before the failure, and say that the run is incomplete.
    results.error = err instanceof Error ? err.message : String(err);
    throw err;
  } finally {
    save();
    writeReport(results);
    console.log(`raw results in bench/out/results.json; the run took ${results.durationS} s`);
  }
}

interface MixInputs {
  fast: Workload;
  slow: Workload;
  embeddings: Workload;
  /** The usual chat mix (max_tokens 32–160), for the case whose latency doubles. */
  chat: Workload;
}

/** The mix job's inputs, `n` requests each, with seeds of their own (no other input changes). */
function writeMixInputs(dir: string, n: number): MixInputs {
  const file = (name: string) => path.join(dir, `mix-${name}.jsonl`);
  return {
    fast: writeWorkload(file('fast'), n, 2001, 'fast', { maxTokens: FAST_TOKENS }),
    slow: writeWorkload(file('slow'), n, 2002, 'slow', { maxTokens: SLOW_TOKENS }),
    embeddings: writeWorkload(file('embeddings'), n, 2003, 'emb', { endpoint: '/v1/embeddings' }),
    chat: writeWorkload(file('chat'), n, 2004, 'chat'),
  };
}

/**
 * Issue 12's changes of request mix on one pool. Each case gets one BESH stack per mode, kept for all the case's
 * batches: what the worker learnt on the batch before is what the case measures. The modes: the client-side
 * signal alone, and the replicas' own /metrics as well (`VLLM_METRICS_URLS`). `progress` gets the job after
 * each case, so a failure later keeps what was measured.
 */
async function mix(
  ctx: StackContext,
  pool: Pool,
  origin: string,
  info: Omit<PoolInfo, 'slots'>,
  concurrency: number,
  inputs: MixInputs,
  progress: (job: MixJob) => void,
): Promise<void> {
  // Fails here, not after two cases, when the simulator does not know latencyFactor.
  await pool.setFaults(NORMAL_LATENCY);
  const serviceMs = (tokens: number) => info.baseLatencyMs + info.perTokenMs * tokens;
  const chatWhat = ([lo, hi]: [number, number]) =>
    `chat, \`max_tokens\` ${lo === hi ? lo : `${lo}–${hi}`} (${lo === hi ? '' : 'mean '}` +
    `${Math.round(serviceMs((lo + hi) / 2))} ms of service)`;
  const what: Record<keyof MixInputs, string> = {
    fast: chatWhat(FAST_TOKENS),
    slow: chatWhat(SLOW_TOKENS),
    embeddings: `embeddings of one 2–6 KB text each (${serviceMs(0)} ms of service)`,
    chat: chatWhat([MIN_OUTPUT_TOKENS, MAX_OUTPUT_TOKENS]),
  };
  const job: MixJob = {
    pool: info.name,
    inputs: Object.fromEntries(
      (Object.keys(inputs) as (keyof MixInputs)[]).map((k) => [
        k,
        { requests: inputs[k].requests, bytes: inputs[k].bytes, endpoint: inputs[k].endpoint, what: what[k] },
      ]),
    ),
    cases: [],
  };
  const plans: {
    id: string;
    title: string;
    before: (keyof MixInputs)[];
    measured: (keyof MixInputs)[];
    doubleAtHalf?: boolean;
  }[] = [
    { id: 'a', title: 'fast then slow', before: ['fast'], measured: ['slow'] },
    { id: 'b', title: 'slow then fast', before: ['slow'], measured: ['fast'] },
    { id: 'c', title: 'embeddings and chat at once', before: [], measured: ['embeddings', 'slow'] },
    { id: 'd', title: 'latency doubles halfway', before: [], measured: ['chat'], doubleAtHalf: true },
  ];
  const metricsUrls = pool.ports.map((p) => `http://127.0.0.1:${p}/metrics`).join(',');
  const modes: { mode: string; tag: string; env: Record<string, string> }[] = [
    { mode: 'client-side signal', tag: 'client', env: {} },
    { mode: 'VLLM_METRICS_URLS', tag: 'metrics', env: { VLLM_METRICS_URLS: metricsUrls } },
  ];
  const poolTag = info.name.replace(/×/g, 'x').replace(/[^\w.-]+/g, '');
  for (const plan of plans) {
    const before = plan.before.map((k) => inputs[k]);
    const measured = plan.measured.map((k) => inputs[k]);
    const requests = measured.reduce((n, w) => n + w.requests, 0);
    const faultAt: FaultAt | undefined = plan.doubleAtHalf
      ? { completed: Math.ceil(requests / 2), faults: { latencyFactor: 2 } }
      : undefined;
    const sets = await Promise.all(
      measured.map(async (w) => ({ path: w.endpoint, bodies: await readBodies(w.file) })),
    );
    let d: DirectRun;
    try {
      d = await direct(pool, origin, sets, concurrency, faultAt);
    } finally {
      await pool.setFaults(NORMAL_LATENCY);
    }
    const c: MixCase = {
      id: plan.id,
      title: plan.title,
      before: plan.before,
      measured: plan.measured,
      slots: pool.slots,
      requests,
      direct: d,
      runs: [],
    };
    // As the other rows: far more than BESH ever needs, then fail with what we have. The batch before may
    // be the slower one.
    const deadlineMs = 120_000 + 20 * d.pool.spanMs;
    for (const m of modes) {
      const stack = await BeshStack.start(
        ctx,
        `${origin}/v1`,
        { ...info.beshEnv, ...m.env },
        `${poolTag}-mix-${plan.id}-${m.tag}`,
      );
      let run: MixRun;
      try {
        const first = before.length ? await measure(stack, pool, before, deadlineMs) : null;
        const last = await measure(stack, pool, measured, deadlineMs, faultAt);
        run = { mode: m.mode, env: m.env, before: first, measured: last };
      } finally {
        await pool.setFaults(NORMAL_LATENCY);
        await stack.stop();
      }
      c.runs.push(run);
      printLine(mixComparison(c, run, info.name));
    }
    job.cases.push(c);
    progress(job);
  }
}

/**
 * The direct client on one or more sets of bodies; several sets run at the same time, each with `concurrency`
 * loops of its own, as one bare client per batch would.
 */
async function direct(
  pool: Pool,
  origin: string,
  sets: { path: string; bodies: string[] }[],
  concurrency: number,
  faultAt?: FaultAt,
): Promise<DirectRun> {
  const requests = sets.reduce((n, s) => n + s.bodies.length, 0);
  const m0 = machineJiffies();
  await pool.begin(faultAt);
  const runs = await Promise.all(sets.map((s) => runDirect(origin, s.path, s.bodies, concurrency)));
  const rec = await pool.end();
  const m1 = machineJiffies();
  const client = {
    concurrency: concurrency * sets.length,
    requests,
    errors: runs.reduce((n, r) => n + r.errors, 0),
    firstSentAt: Math.min(...runs.map((r) => r.firstSentAt)),
    lastDoneAt: Math.max(...runs.map((r) => r.lastDoneAt)),
    // Each run reads this whole process's CPU over nearly the same interval: the largest is the total.
    cpuSeconds: Math.max(...runs.map((r) => r.cpuSeconds)),
  };
  if (client.errors) throw new Error(`direct client: ${client.errors} of ${requests} requests failed`);
  return {
    requests,
    concurrency: client.concurrency,
    client,
    pool: summarize(rec, pool.slots),
    machineBusy: (m1.busy - m0.busy) / (m1.total - m0.total),
    buckets: buckets(rec, pool.slots, client.firstSentAt),
    faultAt: rec.faultAt,
  };
}

async function besh(
  ctx: StackContext,
  pool: Pool,
  upstream: string,
  env: Record<string, string>,
  inputs: Workload[],
  label: string,
  deadlineMs: number,
): Promise<BeshRun> {
  const stack = await BeshStack.start(ctx, upstream, env, label);
  try {
    return await measure(stack, pool, inputs, deadlineMs);
  } finally {
    await stack.stop();
  }
}

/** One run of batches on a running stack, checked line by line. */
async function measure(
  stack: BeshStack,
  pool: Pool,
  inputs: Workload[],
  deadlineMs: number,
  faultAt?: FaultAt,
): Promise<BeshRun> {
  const m0 = machineJiffies();
  const r = await stack.run(pool, inputs, deadlineMs, faultAt);
  const m1 = machineJiffies();
  for (const b of r.batches) {
    if (b.status !== 'completed' || b.okLines !== b.requests || b.errorLines)
      throw new Error(
        `batch ${b.id}: ${b.status}, ${b.okLines}/${b.requests} answered, ${b.errorLines} errors`,
      );
  }
  const createdAt = Math.min(...r.batches.map((b) => b.createdAt));
  const doneAt = Math.max(...r.batches.map((b) => b.statusAt.completed));
  return {
    requests: inputs.reduce((n, w) => n + w.requests, 0),
    batches: r.batches,
    pool: summarize(r.recording, pool.slots),
    wallMs: doneAt - createdAt,
    cpu: r.cpu,
    memory: r.memory,
    limit: r.limit,
    machineBusy: (m1.busy - m0.busy) / (m1.total - m0.total),
    buckets: buckets(r.recording, pool.slots, createdAt),
    faultAt: r.recording.faultAt,
  };
}

let s3Bench: Promise<{ env: Record<string, string>; traffic(): S3Traffic }> | null = null;
/** A moto server, a bucket and a counting proxy, started on first use and removed by cleanup(). */
function benchS3() {
  s3Bench ??= (async () => {
    const bucket = await createTestBucket();
    const proxy = await FaultProxy.start(bucket.endpoint);
    cleanups.push(async () => {
      await proxy.close();
      await bucket.drop();
      await stopMoto();
    });
    return {
      env: s3Env(proxy.endpoint, bucket.bucket),
      traffic: (): S3Traffic => ({
        requests: Object.fromEntries(proxy.forwarded),
        bytesUp: proxy.bytesUp,
        bytesDown: proxy.bytesDown,
        inputBytes: 0,
      }),
    };
  })();
  return s3Bench;
}

async function adminQuery(sql: string): Promise<void> {
  const c = new PgClient({ connectionString: ADMIN_DB_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) {
      procs.killAll(); // a second Ctrl-C: no more waiting
      process.exit(130);
    }
    interrupted = true;
    console.error(`\n${signal}: stopping every process and removing temporary files…`);
    void cleanup().finally(() => process.exit(130));
  });
}

/**
 * Dated sections (`## 2026-12-01: …`) are side-by-side comparisons written by hand from custom runs; a new report
 * keeps them, after its own opening paragraph.
 */
function datedSections(md: string): string {
  const parts = md.split(/^(?=## )/m);
  return parts.filter((p) => /^## \d{4}-\d{2}-\d{2}/.test(p)).join('');
}

function writeReport(results: Results): void {
  fs.writeFileSync(svgPath, renderSvg(results));
  const kept = fs.existsSync(mdPath) ? datedSections(fs.readFileSync(mdPath, 'utf8')) : '';
  const md = renderMarkdown(results, path.relative(path.dirname(mdPath), svgPath));
  const firstSection = md.search(/^## /m);
  fs.writeFileSync(
    mdPath,
    firstSection === -1 ? md + kept : md.slice(0, firstSection) + kept + md.slice(firstSection),
  );
  console.log(`\nwrote ${path.relative(projectRoot, mdPath)} and ${path.relative(projectRoot, svgPath)}`);
}

if (args['render-only']) {
  writeReport(JSON.parse(fs.readFileSync(path.join(outDir, 'results.json'), 'utf8')) as Results);
  process.exit();
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  // Exit once clean: temporal/dev-server.ts's stop() leaves a 10 s kill timer pending after the server exits.
  .finally(() => cleanup().finally(() => process.exit()));
