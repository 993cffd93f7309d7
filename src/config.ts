import path from 'node:path';

/** Every setting BESH reads from the environment; README and env.example list the same names. */
export interface Config {
  host: string;
  port: number;
  dataDir: string;
  filesDir: string;
  /** postgres://… in production; undefined means the embedded SQLite file under dataDir. */
  databaseUrl: string | undefined;
  sqlitePath: string;
  temporalAddress: string;
  temporalNamespace: string;
  taskQueue: string;
  /** Where `make demo`'s dev server serves the Web UI. */
  temporalUiPort: number;
  temporalUiUrl: string;
  vllmBaseUrl: string;
  vllmApiKey: string | undefined;
  seedApiKeys: string[];
  maxWorkers: number;
  /** `adaptive` finds the upstream's best concurrency up to maxWorkers; `fixed` always allows maxWorkers. */
  concurrencyMode: 'adaptive' | 'fixed';
  maxConcurrentBatches: number;
  maxUploadBytes: number;
  maxLineBytes: number;
  maxBatchRequests: number;
  requestTimeoutMs: number;
  requestMaxRetries: number;
  completionWindowMinSeconds: number;
  completionWindowMaxSeconds: number;
  heartbeatTimeoutSeconds: number;
  shutdownGraceSeconds: number;
  cleanupIntervalMinutes: number;
  /** A worker serves Prometheus metrics on this port when set (the API serves them at /metrics). */
  workerMetricsPort: number | undefined;
  /** A prebuilt workflow bundle (bundleWorkflowCode output); unset bundles the workflows at worker start. */
  workflowBundlePath: string | undefined;
}

export class ConfigError extends Error {}

type Env = Record<string, string | undefined>;

const MB = 1024 * 1024;

export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const str = (name: string, fallback: string): string => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? fallback : v.trim();
  };
  const int = (name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max} (got "${raw}")`);
      return fallback;
    }
    return n;
  };
  const url = (name: string, fallback: string, protocols: string[]): string => {
    const v = str(name, fallback);
    try {
      const u = new URL(v);
      if (!protocols.includes(u.protocol)) throw new Error();
    } catch {
      problems.push(
        `${name} must be a URL starting with ${protocols.map((p) => p + '//').join(' or ')} (got "${v.replace(/\/\/[^/@]*@/, '//***@')}")`, // never echo credentials
      );
    }
    return v.replace(/\/+$/, '');
  };

  const oneOf = <T extends string>(name: string, allowed: readonly T[], fallback: T): T => {
    const v = str(name, fallback);
    if ((allowed as readonly string[]).includes(v)) return v as T;
    problems.push(`${name} must be one of ${allowed.join(', ')} (got "${v}")`);
    return fallback;
  };

  const dataDir = path.resolve(str('DATA_DIR', './data'));
  const databaseUrl = env.DATABASE_URL?.trim()
    ? url('DATABASE_URL', '', ['postgres:', 'postgresql:'])
    : undefined;
  const windowMin = int('COMPLETION_WINDOW_MIN_SECONDS', 86400, 1);
  const windowMax = int('COMPLETION_WINDOW_MAX_SECONDS', 86400, 1);
  if (windowMin > windowMax) {
    problems.push('COMPLETION_WINDOW_MIN_SECONDS must not exceed COMPLETION_WINDOW_MAX_SECONDS');
  }

  const uiPort = int('TEMPORAL_UI_PORT', 8233, 1, 65535);

  const config: Config = {
    host: str('BESH_HOST', '127.0.0.1'),
    port: int('BESH_PORT', 5000, 0, 65535),
    dataDir,
    filesDir: path.resolve(str('FILES_DIR', path.join(dataDir, 'files'))),
    databaseUrl,
    sqlitePath: path.resolve(str('SQLITE_PATH', path.join(dataDir, 'besh.sqlite'))),
    temporalAddress: str('TEMPORAL_ADDRESS', '127.0.0.1:7233'),
    temporalNamespace: str('TEMPORAL_NAMESPACE', 'default'),
    taskQueue: str('TEMPORAL_TASK_QUEUE', 'besh-batches'),
    temporalUiPort: uiPort,
    // Links follow the port `make demo` serves the UI on, unless the operator names the UI's URL.
    temporalUiUrl: url('TEMPORAL_UI_URL', `http://localhost:${uiPort}`, ['http:', 'https:']),
    vllmBaseUrl: url('VLLM_BASE_URL', 'http://localhost:8000/v1', ['http:', 'https:']),
    vllmApiKey: env.VLLM_API_KEY?.trim() || undefined,
    seedApiKeys: str('BESH_API_KEYS', '')
      .split(',')
      .map((k) => k.trim())
      .filter(Boolean),
    maxWorkers: int('MAX_WORKERS', 256, 1, 100000),
    concurrencyMode: oneOf('CONCURRENCY_MODE', ['adaptive', 'fixed'] as const, 'adaptive'),
    maxConcurrentBatches: int('MAX_CONCURRENT_BATCHES', 4, 1, 10000),
    maxUploadBytes: int('MAX_UPLOAD_BYTES', 200 * MB, 1),
    maxLineBytes: int('MAX_LINE_BYTES', 10 * MB, 64),
    maxBatchRequests: int('MAX_BATCH_REQUESTS', 50000, 1),
    requestTimeoutMs: int('REQUEST_TIMEOUT_MS', 600_000, 100),
    requestMaxRetries: int('REQUEST_MAX_RETRIES', 8, 0, 100),
    completionWindowMinSeconds: windowMin,
    completionWindowMaxSeconds: windowMax,
    heartbeatTimeoutSeconds: int('HEARTBEAT_TIMEOUT_SECONDS', 30, 1),
    shutdownGraceSeconds: int('SHUTDOWN_GRACE_SECONDS', 30, 0),
    workflowBundlePath: env.WORKFLOW_BUNDLE_PATH?.trim() || undefined,
    cleanupIntervalMinutes: int('CLEANUP_INTERVAL_MINUTES', 60, 1, 7 * 24 * 60),
    workerMetricsPort: env.WORKER_METRICS_PORT?.trim()
      ? int('WORKER_METRICS_PORT', 9464, 1, 65535)
      : undefined,
  };
  for (const k of config.seedApiKeys) {
    if (k.length < 16) problems.push('BESH_API_KEYS entries must be at least 16 characters long');
  }
  if (problems.length) throw new ConfigError(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
  return config;
}
