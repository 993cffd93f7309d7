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
  /** One batch on each blob store, side by side: local, then S3 (moto) through a counting proxy. */
  stores: { local: Comparison; s3: Comparison; traffic: S3Traffic } | null;
  /** Set when the run stopped early: the report then covers what was measured before. */
  error?: string;
}
