import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';

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
  /** Deadline of every call the API makes to Temporal; past it the client gets a 503 to retry. */
  temporalCallTimeoutSeconds: number;
  /** Where `make demo`'s dev server serves the Web UI. */
  temporalUiPort: number;
  temporalUiUrl: string;
  vllmBaseUrl: string;
  vllmApiKey: string | undefined;
  /** The vLLM servers' own /metrics: their queue steers the adaptive limit (behind a balancer, name each server). */
  vllmMetricsUrls: string[];
  /** Where requests go, by model: UPSTREAMS / UPSTREAMS_FILE, or one pool of VLLM_BASE_URL serving every model. */
  pools: PoolConfig[];
  seedApiKeys: string[];
  /** Keys seeded as operator keys: their tenant's API, and /metrics. */
  seedOperatorKeys: string[];
  /** Upstream slots of one `make worker` (a host or container), shared equally by its worker processes. */
  maxWorkers: number;
  /** Worker processes `make worker` runs on this host: a process is one event loop, so one per core. */
  workerProcesses: number;
  /** `adaptive` finds the upstream's best concurrency up to maxWorkers; `fixed` always allows maxWorkers. */
  concurrencyMode: 'adaptive' | 'fixed';
  maxConcurrentBatches: number;
  maxUploadBytes: number;
  maxLineBytes: number;
  maxBatchRequests: number;
  /** Lines in an uploaded JSONL file, blank ones included. */
  maxUploadLines: number;
  /** Decoded bytes allowed per byte of a compressed upload. */
  maxExpansionRatio: number;
  /** Time for a request's headers to arrive. */
  httpHeadersTimeoutSeconds: number;
  /** Silence allowed between the bytes of a request body. */
  httpBodyIdleTimeoutSeconds: number;
  /** An idle keep-alive connection's lifetime. */
  httpKeepAliveTimeoutSeconds: number;
  requestTimeoutMs: number;
  requestMaxRetries: number;
  completionWindowMinSeconds: number;
  completionWindowMaxSeconds: number;
  heartbeatTimeoutSeconds: number;
  /** How often a chunk stores its finished lines (at most; also every 500 lines): its checkpoint. */
  checkpointFlushMs: number;
  shutdownGraceSeconds: number;
  cleanupIntervalMinutes: number;
  /** A worker serves Prometheus metrics on this port when set (the API serves them at /metrics). */
  workerMetricsPort: number | undefined;
  /** A prebuilt workflow bundle (bundleWorkflowCode output); unset bundles the workflows at worker start. */
  workflowBundlePath: string | undefined;
  /** Where uploads, results and checkpoint segments live: files under dataDir, or an S3-compatible bucket. */
  blobStore: 'local' | 's3';
  /** Read only when blobStore is `s3`. */
  s3: S3Config;
  /** Webhook endpoints may target loopback and private addresses (off: a tenant could reach internal services). */
  webhookAllowPrivate: boolean;
}

export interface S3Config {
  /** Undefined means AWS itself (the region's endpoint). */
  endpoint: string | undefined;
  region: string;
  bucket: string;
  /** Put before every key: `${prefix}files/<id>`, `${prefix}parts/<segment>`. */
  prefix: string;
  /** Bucket in the path instead of the host name (MinIO, Ceph, moto). */
  forcePathStyle: boolean;
  /** Both or neither; neither means the AWS SDK's default chain (env, profile, instance role). */
  credentials: { accessKeyId: string; secretAccessKey: string } | undefined;
}

/** One pool of model servers: its own upstream slots, adaptive limit and fair share between batches. */
export interface PoolConfig {
  /** Names it in metrics (`pool` label), the dashboard and logs. */
  name: string;
  /** Base URLs (…/v1) of its servers or balancers; several share its requests. */
  urls: string[];
  apiKey: string | undefined;
  /** The models it serves; empty for the pool that takes every model no other pool names. */
  models: string[];
  /** Its servers' own /metrics (see vllmMetricsUrls). */
  metricsUrls: string[];
  /** Its upstream slots per worker host, shared by the host's worker processes. */
  maxWorkers: number;
}

/** The pool that serves `model`: the one naming it, else the pool that takes every other model. */
export function poolServing(pools: readonly PoolConfig[], model: string): PoolConfig | undefined {
  return pools.find((p) => p.models.includes(model)) ?? pools.find((p) => p.models.length === 0);
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
  const url = (name: string, fallback: string, protocols: string[]): string =>
    checkUrl(name, str(name, fallback), protocols);
  const checkUrl = (name: string, v: string, protocols: string[]): string => {
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

  const urlList = (name: string, protocols: string[]): string[] =>
    str(name, '')
      .split(',')
      .map((u) => u.trim())
      .filter(Boolean)
      .map((u) => checkUrl(name, u, protocols));

  const keyList = (name: string): string[] => {
    const keys = str(name, '')
      .split(',')
      .map((k) => k.trim())
      .filter(Boolean);
    if (keys.some((k) => k.length < 16)) problems.push(`${name} entries must be at least 16 characters long`);
    return keys;
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
  const maxBatchRequests = int('MAX_BATCH_REQUESTS', 50000, 1);
  // Generous: blank lines between requests are allowed, and fine-tune or evals files may hold more lines.
  const maxUploadLines = int('MAX_UPLOAD_LINES', 20 * maxBatchRequests, 1);
  if (maxUploadLines < maxBatchRequests) {
    problems.push('MAX_UPLOAD_LINES must not be less than MAX_BATCH_REQUESTS');
  }

  const blobStore = oneOf('BLOB_STORE', ['local', 's3'] as const, 'local');
  // A local setup ignores the S3 settings, so only the S3 store reports what is wrong with them.
  const s3 = s3Settings(env, blobStore === 's3' ? problems : []);

  const maxWorkers = int('MAX_WORKERS', 256, 1, 100000);
  const vllmBaseUrl = url('VLLM_BASE_URL', 'http://localhost:8000/v1', ['http:', 'https:']);
  const vllmApiKey = env.VLLM_API_KEY?.trim() || undefined;
  const vllmMetricsUrls = urlList('VLLM_METRICS_URLS', ['http:', 'https:']);
  const pools = upstreamPools(
    env,
    problems,
    (name, v) => checkUrl(name, v, ['http:', 'https:']),
    maxWorkers,
  ) ?? [
    {
      name: 'default',
      urls: [vllmBaseUrl],
      apiKey: vllmApiKey,
      models: [],
      metricsUrls: vllmMetricsUrls,
      maxWorkers,
    },
  ];

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
    temporalCallTimeoutSeconds: int('TEMPORAL_CALL_TIMEOUT_SECONDS', 10, 1, 60),
    temporalUiPort: uiPort,
    // Links follow the port `make demo` serves the UI on, unless the operator names the UI's URL.
    temporalUiUrl: url('TEMPORAL_UI_URL', `http://localhost:${uiPort}`, ['http:', 'https:']),
    vllmBaseUrl,
    vllmApiKey,
    vllmMetricsUrls,
    pools,
    seedApiKeys: keyList('BESH_API_KEYS'),
    seedOperatorKeys: keyList('BESH_OPERATOR_KEYS'),
    maxWorkers,
    // One per core, up to 8: each holds its own Temporal worker (about 150 MB), and 8 event loops already drive
    // more requests a second than a GPU pool answers.
    workerProcesses: int('WORKER_PROCESSES', Math.min(8, os.availableParallelism()), 1, 256),
    concurrencyMode: oneOf('CONCURRENCY_MODE', ['adaptive', 'fixed'] as const, 'adaptive'),
    maxConcurrentBatches: int('MAX_CONCURRENT_BATCHES', 4, 1, 10000),
    maxUploadBytes: int('MAX_UPLOAD_BYTES', 200 * MB, 1),
    maxLineBytes: int('MAX_LINE_BYTES', 10 * MB, 64),
    maxBatchRequests,
    maxUploadLines,
    maxExpansionRatio: int('MAX_EXPANSION_RATIO', 1000, 1),
    httpHeadersTimeoutSeconds: int('HTTP_HEADERS_TIMEOUT_SECONDS', 60, 1, 3600),
    httpBodyIdleTimeoutSeconds: int('HTTP_BODY_IDLE_TIMEOUT_SECONDS', 60, 1, 3600),
    httpKeepAliveTimeoutSeconds: int('HTTP_KEEP_ALIVE_TIMEOUT_SECONDS', 65, 1, 3600),
    requestTimeoutMs: int('REQUEST_TIMEOUT_MS', 600_000, 100),
    requestMaxRetries: int('REQUEST_MAX_RETRIES', 8, 0, 100),
    completionWindowMinSeconds: windowMin,
    completionWindowMaxSeconds: windowMax,
    heartbeatTimeoutSeconds: int('HEARTBEAT_TIMEOUT_SECONDS', 30, 1),
    checkpointFlushMs: int('CHECKPOINT_FLUSH_MS', 1000, 10),
    shutdownGraceSeconds: int('SHUTDOWN_GRACE_SECONDS', 30, 0),
    workflowBundlePath: env.WORKFLOW_BUNDLE_PATH?.trim() || undefined,
    cleanupIntervalMinutes: int('CLEANUP_INTERVAL_MINUTES', 60, 1, 7 * 24 * 60),
    workerMetricsPort: env.WORKER_METRICS_PORT?.trim()
      ? int('WORKER_METRICS_PORT', 9464, 1, 65535)
      : undefined,
    blobStore,
    s3,
    webhookAllowPrivate: oneOf('WEBHOOK_ALLOW_PRIVATE', ['true', 'false'] as const, 'false') === 'true',
  };
  if (config.seedApiKeys.some((k) => config.seedOperatorKeys.includes(k))) {
    problems.push('a key cannot be in both BESH_API_KEYS and BESH_OPERATOR_KEYS');
  }
  if (problems.length) throw new ConfigError(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
  return config;
}

const POOL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const POOL_KEYS = ['urls', 'api_key', 'models', 'metrics_urls', 'max_workers'];

/**
 * The pools of UPSTREAMS (inline JSON) or UPSTREAMS_FILE (a JSON or YAML file), checked strictly: an unknown key
 * is a typo that would otherwise route a model nowhere. Undefined when neither is set (the VLLM_BASE_URL pool).
 */
function upstreamPools(
  env: Env,
  problems: string[],
  checkUrl: (name: string, v: string) => string,
  maxWorkers: number,
): PoolConfig[] | undefined {
  const inline = env.UPSTREAMS?.trim();
  const file = env.UPSTREAMS_FILE?.trim();
  if (!inline && !file) return undefined;
  if (inline && file) {
    problems.push('set UPSTREAMS or UPSTREAMS_FILE, not both');
    return [];
  }
  const source = inline ? 'UPSTREAMS' : `UPSTREAMS_FILE (${file})`;
  let doc: unknown;
  try {
    if (inline) doc = JSON.parse(inline);
    else {
      const text = fs.readFileSync(file!, 'utf8');
      doc = file!.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
    }
  } catch (err) {
    // Never the parser's own message: it quotes the text, and the text may hold an api_key.
    const e = err as NodeJS.ErrnoException & { linePos?: Array<{ line: number; col: number }> };
    const where = e.linePos?.[0] ? ` (line ${e.linePos[0].line}, column ${e.linePos[0].col})` : '';
    problems.push(
      e.code && !e.linePos
        ? `${source} cannot be read (${e.code})`
        : `${source} is not valid ${inline || file!.endsWith('.json') ? 'JSON' : 'YAML'}${where}`,
    );
    return [];
  }
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  const strings = (v: unknown) =>
    Array.isArray(v) && v.every((s) => typeof s === 'string' && s.trim() !== '');
  const before = problems.length;
  const bad = (msg: string) => problems.push(`${source}: ${msg}`);
  if (!isObject(doc) || !isObject(doc.pools) || Object.keys(doc).some((k) => k !== 'pools')) {
    bad('must be an object {"pools": {"<name>": {"urls": [...], "models": [...]}, ...}}');
    return [];
  }
  const pools: PoolConfig[] = [];
  const owner = new Map<string, string>();
  for (const [name, p] of Object.entries(doc.pools)) {
    const at = `pool "${name.slice(0, 64)}"`;
    if (!POOL_NAME.test(name)) bad(`${at}: a pool name is letters, digits, '.', '-' and '_' (at most 64)`);
    if (!isObject(p)) {
      bad(`${at} must be an object`);
      continue;
    }
    const unknown = Object.keys(p).filter((k) => !POOL_KEYS.includes(k));
    if (unknown.length) bad(`${at}: unknown key(s) ${unknown.join(', ')} (allowed: ${POOL_KEYS.join(', ')})`);
    if (!strings(p.urls) || (p.urls as string[]).length === 0)
      bad(`${at}: "urls" must be a non-empty list of URLs`);
    if (p.models !== undefined && (!strings(p.models) || (p.models as string[]).length === 0)) {
      bad(
        `${at}: "models" must be a non-empty list of model names (leave it out to serve every other model)`,
      );
    }
    if (p.metrics_urls !== undefined && !strings(p.metrics_urls))
      bad(`${at}: "metrics_urls" must be a list of URLs`);
    if (p.api_key !== undefined && typeof p.api_key !== 'string') bad(`${at}: "api_key" must be a string`);
    const mw = p.max_workers;
    if (mw !== undefined && !(Number.isInteger(mw) && (mw as number) >= 1 && (mw as number) <= 100000)) {
      bad(`${at}: "max_workers" must be a whole number from 1 to 100000`);
    }
    const models = strings(p.models) ? (p.models as string[]).map((m) => m.trim()) : [];
    for (const m of models) {
      const other = owner.get(m);
      if (other !== undefined) bad(`model "${m.slice(0, 200)}" is in pools "${other}" and "${name}"`);
      owner.set(m, name);
    }
    pools.push({
      name,
      urls: strings(p.urls)
        ? (p.urls as string[]).map((u) => checkUrl(`${source} ${at} urls`, u.trim()))
        : [],
      apiKey: typeof p.api_key === 'string' ? p.api_key.trim() || undefined : undefined,
      models,
      metricsUrls: strings(p.metrics_urls)
        ? (p.metrics_urls as string[]).map((u) => checkUrl(`${source} ${at} metrics_urls`, u.trim()))
        : [],
      maxWorkers: typeof mw === 'number' && Number.isInteger(mw) ? mw : maxWorkers,
    });
  }
  if (pools.length === 0) bad('names no pool');
  const catchAll = pools.filter((p) => p.models.length === 0);
  if (catchAll.length > 1) {
    bad(`only one pool may leave out "models" (${catchAll.map((p) => `"${p.name}"`).join(', ')} do)`);
  }
  return problems.length > before ? [] : pools;
}

/** The S3_* settings; `problems` collects what is wrong with them. */
function s3Settings(env: Env, problems: string[]): S3Config {
  const str = (name: string): string => env[name]?.trim() ?? '';
  const endpoint = str('S3_ENDPOINT').replace(/\/+$/, '');
  if (endpoint) {
    let ok = false;
    try {
      ok = ['http:', 'https:'].includes(new URL(endpoint).protocol);
    } catch {
      ok = false;
    }
    if (!ok) problems.push(`S3_ENDPOINT must be a URL starting with http:// or https:// (got "${endpoint}")`);
  }
  const bucket = str('S3_BUCKET');
  if (!bucket) problems.push('S3_BUCKET must be set when BLOB_STORE=s3');
  else if (!/^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$/.test(bucket)) {
    problems.push(`S3_BUCKET must be a bucket name: letters, digits, '.', '-' and '_' (got "${bucket}")`);
  }
  const prefix = str('S3_PREFIX');
  if (prefix.startsWith('/')) problems.push(`S3_PREFIX must not start with "/" (got "${prefix}")`);
  const pathStyle = str('S3_FORCE_PATH_STYLE').toLowerCase() || 'false';
  if (pathStyle !== 'true' && pathStyle !== 'false') {
    problems.push(`S3_FORCE_PATH_STYLE must be true or false (got "${env.S3_FORCE_PATH_STYLE}")`);
  }
  const accessKeyId = str('S3_ACCESS_KEY_ID');
  const secretAccessKey = str('S3_SECRET_ACCESS_KEY');
  if (Boolean(accessKeyId) !== Boolean(secretAccessKey)) {
    problems.push(
      'S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set together, or both left empty for the AWS default credential chain',
    );
  }
  return {
    endpoint: endpoint || undefined,
    region: str('S3_REGION') || 'us-east-1',
    bucket,
    prefix,
    forcePathStyle: pathStyle === 'true',
    credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : undefined,
  };
}
