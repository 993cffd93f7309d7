// BESH end to end, as a user drives it: the API and a worker as their own processes (from dist/), the official
// openai SDK to upload, create, poll and download. Fresh processes for every scenario, so the adaptive limit
// starts cold and each process's peak RSS and CPU belong to that scenario alone (the mix job keeps one stack
// for several runs on purpose: the worker's state from one batch is what it measures on the next).
import type { Client } from '@temporalio/client';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import { freePort } from '../test/support/ports';
import type { FaultAt, Pool, Recording } from './pool';
import { pgCpuBetween, type PgCpu, type PostgresCpu } from './postgres';
import { cpuSeconds, memoryMb, treeCpuSeconds, treeMemoryMb, until, type Processes } from './processes';
import { sampleLimit, type LimitSample } from './sampler';
import type { Workload } from './workload';

const POLL_MS = 200;
const TERMINAL = new Set(['completed', 'failed', 'expired', 'cancelled']);

export interface CpuReading {
  api: number;
  worker: number;
  temporal: number;
  postgres: number;
  /** The simulated pool and nginx: the "GPUs" and the balancer, not BESH. */
  pool: number;
  nginx: number;
}

export interface BatchOutcome {
  id: string;
  requests: number;
  inputBytes: number;
  uploadMs: number;
  /** Epoch ms just before `batches.create`. */
  createdAt: number;
  /** Epoch ms each status was first seen by polling. */
  statusAt: Record<string, number>;
  status: string;
  downloadMs: number;
  outputLines: number;
  /** Output lines with status 200, each custom_id once. */
  okLines: number;
  errorLines: number;
  historyEvents: number;
}

export interface BeshResult {
  batches: BatchOutcome[];
  recording: Recording;
  limit: LimitSample[];
  cpu: { upload: CpuReading; batch: CpuReading; download: CpuReading };
  memory: { apiPeakMb: number; workerPeakMb: number; workerIdleMb: number; apiIdleMb: number };
}

export interface StackContext {
  procs: Processes;
  /** DATA_DIR, DATABASE_URL, TEMPORAL_ADDRESS, BESH_API_KEYS… shared by every scenario of the run. */
  env: Record<string, string>;
  apiKey: string;
  temporal: Client;
  temporalPid: number;
  postgres: PostgresCpu;
  nginxPid: number | null;
  /** When set, the API and worker write V8 CPU profiles here (`--profile`). */
  profileDir?: string;
}

export class BeshStack {
  private constructor(
    private readonly ctx: StackContext,
    readonly api: ChildProcess,
    readonly worker: ChildProcess,
    readonly openai: OpenAI,
    readonly metricsPort: number,
  ) {}

  static async start(ctx: StackContext, upstream: string, extraEnv: Record<string, string>, label: string) {
    const [apiPort, metricsPort] = [await freePort(), await freePort()];
    const env = { ...ctx.env, VLLM_BASE_URL: upstream, ...extraEnv };
    // Node refuses --cpu-prof in NODE_OPTIONS: it goes on the command line.
    const profile = (name: string) =>
      ctx.profileDir
        ? ['--cpu-prof', `--cpu-prof-dir=${ctx.profileDir}`, `--cpu-prof-name=${name}.cpuprofile`]
        : [];
    const api = ctx.procs.startBesh(
      'api',
      { ...env, BESH_PORT: String(apiPort) },
      `api-${label}`,
      profile(`api-${label}`),
    );
    await until('the API /health', async () => (await fetch(`http://127.0.0.1:${apiPort}/health`)).ok);
    // After the API: it runs the migrations and seeds the key the worker's metrics endpoint checks.
    const worker = ctx.procs.startBesh(
      'worker',
      { ...env, WORKER_METRICS_PORT: String(metricsPort) },
      `worker-${label}`,
      // As docker-compose runs it (see the worker's `command` there).
      ['--max-old-space-size=256', ...profile(`worker-${label}`)],
    );
    const metrics = `http://127.0.0.1:${metricsPort}/metrics`;
    const auth = { authorization: `Bearer ${ctx.apiKey}` };
    await until('the worker', async () => (await fetch(metrics, { headers: auth })).ok);
    const openai = new OpenAI({
      apiKey: ctx.apiKey,
      baseURL: `http://127.0.0.1:${apiPort}/v1`,
      timeout: 600_000,
      maxRetries: 2,
    });
    return new BeshStack(ctx, api, worker, openai, metricsPort);
  }

  private async cpu(pool: Pool): Promise<CpuSnapshot> {
    return {
      api: cpuSeconds(this.api.pid!),
      // With WORKER_PROCESSES > 1 the worker is a primary and its forks: all of them.
      worker: treeCpuSeconds(this.worker.pid!),
      temporal: cpuSeconds(this.ctx.temporalPid),
      postgres: await this.ctx.postgres.read(),
      pool: cpuSeconds(pool.child.pid!),
      nginx: this.ctx.nginxPid === null ? 0 : treeCpuSeconds(this.ctx.nginxPid),
    };
  }

  async stop(): Promise<void> {
    await this.ctx.procs.stop(this.worker);
    await this.ctx.procs.stop(this.api);
  }

  /**
   * Uploads, creates every batch at once, polls until all are final, downloads and checks the results.
   * `faultAt` changes the pool's faults part-way through (see Pool.begin).
   */
  async run(pool: Pool, inputs: Workload[], deadlineMs: number, faultAt?: FaultAt): Promise<BeshResult> {
    const cpu0 = await this.cpu(pool);
    const uploads = await Promise.all(
      inputs.map(async (w) => {
        const started = Date.now();
        const file = await this.openai.files.create({ file: fs.createReadStream(w.file), purpose: 'batch' });
        return { file, uploadMs: Date.now() - started };
      }),
    );
    const apiIdleMb = memoryMb(this.api.pid!).peak;
    const workerIdleMb = treeMemoryMb(this.worker.pid!).peak;
    const limits = sampleLimit(this.metricsPort, this.ctx.apiKey);
    try {
      await pool.begin(faultAt);
    } catch (err) {
      await limits.stop();
      throw err;
    }
    const cpu1 = await this.cpu(pool);
    let runs;
    try {
      runs = await Promise.all(
        uploads.map(async ({ file }, i) => {
          const createdAt = Date.now();
          let b = await this.openai.batches.create({
            input_file_id: file.id,
            endpoint: inputs[i].endpoint,
            completion_window: '24h',
          });
          const statusAt: Record<string, number> = { [b.status]: Date.now() };
          while (!TERMINAL.has(b.status)) {
            if (Date.now() - createdAt > deadlineMs)
              throw new Error(`batch ${b.id} still ${b.status} after ${deadlineMs / 1000} s`);
            await sleep(POLL_MS);
            b = await this.openai.batches.retrieve(b.id);
            statusAt[b.status] ??= Date.now();
          }
          return { batch: b, createdAt, statusAt };
        }),
      );
    } catch (err) {
      await limits.stop();
      await pool.end();
      throw err;
    }
    const cpu2 = await this.cpu(pool);
    const recording = await pool.end();
    const limit = await limits.stop();

    const batches: BatchOutcome[] = [];
    for (const [i, { batch, createdAt, statusAt }] of runs.entries()) {
      const started = Date.now();
      const outText = batch.output_file_id ? await this.download(batch.output_file_id) : '';
      const errText = batch.error_file_id ? await this.download(batch.error_file_id) : '';
      const downloadMs = Date.now() - started;
      const out = check(outText);
      const err = check(errText);
      const history = await this.ctx.temporal.workflow.getHandle(batch.id).fetchHistory();
      batches.push({
        id: batch.id,
        requests: inputs[i].requests,
        inputBytes: inputs[i].bytes,
        uploadMs: uploads[i].uploadMs,
        createdAt,
        statusAt,
        status: batch.status,
        downloadMs,
        outputLines: out.lines,
        okLines: out.ok,
        errorLines: err.lines,
        historyEvents: history.events?.length ?? 0,
      });
    }
    const cpu3 = await this.cpu(pool);
    return {
      batches,
      recording,
      limit,
      cpu: { upload: minus(cpu1, cpu0), batch: minus(cpu2, cpu1), download: minus(cpu3, cpu2) },
      memory: {
        apiPeakMb: memoryMb(this.api.pid!).peak,
        workerPeakMb: treeMemoryMb(this.worker.pid!).peak,
        apiIdleMb,
        workerIdleMb,
      },
    };
  }

  /** A result file's whole content (timed apart from checking it). */
  private async download(fileId: string): Promise<string> {
    return (await this.openai.files.content(fileId)).text();
  }
}

/** Counts a result file's lines; `ok` counts 200 answers with distinct custom_ids. */
function check(text: string): { lines: number; ok: number } {
  const ids = new Set<string>();
  let lines = 0;
  let ok = 0;
  for (const line of text.split('\n')) {
    if (!line) continue;
    lines++;
    const l = JSON.parse(line) as { custom_id: string; response: { status_code: number } | null };
    if (l.response?.status_code === 200 && !ids.has(l.custom_id)) ok++;
    ids.add(l.custom_id);
  }
  return { lines, ok };
}

type CpuSnapshot = Omit<CpuReading, 'postgres'> & { postgres: PgCpu };

function minus(a: CpuSnapshot, b: CpuSnapshot): CpuReading {
  return {
    api: a.api - b.api,
    worker: a.worker - b.worker,
    temporal: a.temporal - b.temporal,
    postgres: pgCpuBetween(b.postgres, a.postgres),
    pool: a.pool - b.pool,
    nginx: a.nginx - b.nginx,
  };
}
