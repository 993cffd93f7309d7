// The shape of one benchmark run's results (bench/out/results.json), shared by the runner, the report and
// the plot. Raw 10 ms recordings stay out: summaries and 250 ms buckets are enough to rebuild every number.
import type { BatchOutcome, CpuReading } from './besh';
import type { DirectResult } from './direct-client';
import type { Bucket, PoolSummary } from './metrics';
import type { PoolConfig } from './pool';
import type { LimitSample } from './sampler';

export interface PoolInfo extends PoolConfig {
  name: string;
  /** Total slots; 0 when unlimited. */
  slots: number;
  /** Whether requests go through nginx (as BESH's VLLM_BASE_URL does). */
  viaNginx: boolean;
  /** What BESH was given beyond the defaults: the matching deployment's settings, no tuning. */
  beshEnv: Record<string, string>;
}

export interface DirectRun {
  requests: number;
  concurrency: number;
  client: DirectResult;
  pool: PoolSummary;
  /** Fraction of the machine's CPUs busy during the run, everything included. */
  machineBusy: number;
  buckets: Bucket[];
  /** Epoch ms the replicas' faults changed mid-run (the mix job's latency doubling). */
  faultAt?: number;
}

export interface BeshRun {
  requests: number;
  batches: BatchOutcome[];
  pool: PoolSummary;
  /** First create → last batch seen `completed`. */
  wallMs: number;
  cpu: { upload: CpuReading; batch: CpuReading; download: CpuReading };
  memory: { apiPeakMb: number; workerPeakMb: number; workerIdleMb: number; apiIdleMb: number };
  limit: LimitSample[];
  machineBusy: number;
  /** Buckets from the first create. */
  buckets: Bucket[];
  /** Epoch ms the replicas' faults changed mid-run (the mix job's latency doubling). */
  faultAt?: number;
}

export interface Comparison {
  pool: string;
  /** The pool's total slots; 0 when unlimited. */
  slots: number;
  requests: number;
  batches: number;
  direct: DirectRun;
  besh: BeshRun;
}

/** What BESH sent to and read from S3 during one batch (upload, run, download). */
export interface S3Traffic {
  /** Requests by S3 operation. */
  requests: Record<string, number>;
  /** Request and response body bytes. */
  bytesUp: number;
  bytesDown: number;
  /** The batch's input file size, for scale. */
  inputBytes: number;
}

/** One BESH stack (API + worker) through one case of the mix job. */
export interface MixRun {
  /** Which signal the adaptive limit has: `client-side signal` alone, or `VLLM_METRICS_URLS` as well. */
  mode: string;
  /** What this mode adds to the pool's BESH settings. */
  env: Record<string, string>;
  /** The batch the same worker ran just before the measured one; null when the case has none. */
  before: BeshRun | null;
  measured: BeshRun;
}

/** A change of request mix (issue 12): one or two batches measured on a worker that may have run another first. */
export interface MixCase {
  id: string;
  title: string;
  /** The inputs run before the measured ones, and the measured ones (names from `MixJob.inputs`). */
  before: string[];
  measured: string[];
  slots: number;
  /** Requests in the measured batches. */
  requests: number;
  /** The direct client on the measured batches alone (it keeps no state between batches). */
  direct: DirectRun;
  runs: MixRun[];
}

export interface MixJob {
  pool: string;
  /** Each input by name: its requests, endpoint and what its requests ask for. */
  inputs: Record<string, { requests: number; bytes: number; endpoint: string; what: string }>;
  cases: MixCase[];
}

export interface Calibration {
  pool: string;
  requests: number;
  tried: { concurrency: number; spanMs: number }[];
  best: number;
}

export interface Results {
  preset: string;
  command: string;
  startedAt: string;
  durationS: number;
  machine: {
    cpus: number;
    cpuModel: string;
    memGiB: number;
    kernel: string;
    node: string;
    loadAvg: number[];
  };
  workload: { files: { requests: number; bytes: number }[]; outputTokens: [number, number] };
  pools: PoolInfo[];
  calibrations: Calibration[];
  /** Single batches, per pool and size. */
  utilisation: Comparison[];
  /** Several batches created at once. */
  concurrent: Comparison | null;
  /** The infinitely fast upstream. */
  fast: Comparison | null;
  /** The same with CONCURRENCY_MODE=fixed: the orchestration's cost without the adaptive limit's choices. */
  fastFixed: BeshRun | null;
  /** The same with WORKER_PROCESSES=2 (every other row runs one worker process); absent in older results. */
  fastProcesses?: BeshRun | null;
  /** One batch on each blob store, side by side: local, then S3 (moto) through a counting proxy. */
  stores: { local: Comparison; s3: Comparison; traffic: S3Traffic } | null;
  /** A short batch (issue 12: 100 requests within 0.5 s of the direct client); absent in older results. */
  short?: Comparison | null;
  /** Changes of request mix (issue 12); absent in older results. */
  mix?: MixJob | null;
  /** Set when the run stopped early: the report then covers what was measured before. */
  error?: string;
}
