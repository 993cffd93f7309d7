// An OpenAI-compatible HTTP server standing in for vLLM. Built on bare node:http because benchmarks push
// tens of thousands of requests through it on two cores.
import { randomUUID } from 'node:crypto';
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { Endpoint, outputTokens, simulatedResponse } from './answer';
import { mulberry32 } from '../shared/prng';

export interface Faults {
  /** Fractions 0..1 of inference requests that get each fault (one PRNG draw decides among them). */
  error500Rate: number;
  error503Rate: number;
  rate429Rate: number;
  stallRate: number;
  resetRate: number;
  malformedRate: number;
  /** Sent as `Retry-After` on simulated 429s. */
  retryAfterSeconds: number;
  /** Extra time a stalled request hangs before answering normally. */
  stallMs: number;
  /** Multiplies the service time of requests received from now on: 2 stands for a model whose answers got longer. */
  latencyFactor: number;
  /** Every request except /sim/* gets a quick 503, /health included. */
  down: boolean;
  /** Write-only: go down now and come back by itself after this many ms. */
  downForMs?: number;
}

export interface SimulatorOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Max requests in service at once (vLLM's max_num_seqs); the rest wait in FIFO order. 0 = unlimited. */
  capacity?: number;
  baseLatencyMs?: number;
  perTokenMs?: number;
  defaultOutputTokens?: number;
  /** Name listed by /v1/models; requests may use any model name. */
  model?: string;
  faults?: Partial<Faults>;
  /** Seeds the PRNG that decides faults, so a run's fault sequence is reproducible. */
  seed?: number;
  /** When set, /v1/* requires `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  maxBodyBytes?: number;
}

export interface SimulatorStats {
  /** Requests received outside /sim/*. */
  received: number;
  /** Responses sent, any status; `byStatus` breaks them down. */
  completed: number;
  inService: number;
  queued: number;
  maxInService: number;
  /** Clients that went away before their answer. */
  aborted: number;
  byStatus: Record<string, number>;
  /** Keyed by route path, or "other". */
  byEndpoint: Record<string, number>;
  faultsInjected: Record<string, number>;
  /** Sum of completion tokens of normal 200 answers. */
  outputTokens: number;
}

export interface Simulator {
  port: number;
  /** Base URL for OpenAI clients, e.g. http://127.0.0.1:8000/v1 */
  url: string;
  stats(): SimulatorStats;
  /** Zeroes counters and reseeds the fault PRNG; in-flight gauges stay truthful. */
  reset(): void;
  /** Merges into the current faults; throws on unknown keys or out-of-range values. */
  setFaults(f: Partial<Faults>): void;
  close(): Promise<void>;
}

type FaultKind = 'error500' | 'error503' | 'rate429' | 'stall' | 'reset' | 'malformed';

interface Job {
  endpoint: Endpoint;
  body: Record<string, unknown>;
  requestId: string;
  res: ServerResponse;
  fault: FaultKind | undefined;
  serviceMs: number;
  state: 'queued' | 'serving' | 'done';
  timer?: NodeJS.Timeout;
}

const INFERENCE: Record<string, Endpoint> = {
  '/v1/chat/completions': '/v1/chat/completions',
  '/v1/completions': '/v1/completions',
  '/v1/embeddings': '/v1/embeddings',
  '/v1/responses': '/v1/responses',
};
const REQUIRED_FIELD: Record<Endpoint, string> = {
  '/v1/chat/completions': 'messages',
  '/v1/completions': 'prompt',
  '/v1/embeddings': 'input',
  '/v1/responses': 'input',
};
const RATE_KEYS = [
  'error500Rate',
  'error503Rate',
  'rate429Rate',
  'stallRate',
  'resetRate',
  'malformedRate',
] as const;
const DURATION_KEYS = ['retryAfterSeconds', 'stallMs', 'downForMs'] as const;
export const NO_FAULTS: Faults = {
  error500Rate: 0,
  error503Rate: 0,
  rate429Rate: 0,
  stallRate: 0,
  resetRate: 0,
  malformedRate: 0,
  retryAfterSeconds: 1,
  stallMs: 30_000,
  latencyFactor: 1,
  down: false,
};

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Validates a Partial<Faults> coming from JSON or from code. */
export function parseFaults(x: unknown): Partial<Faults> {
  if (!isObject(x)) throw new Error('faults must be a JSON object');
  const out: Partial<Faults> = {};
  for (const [key, v] of Object.entries(x)) {
    const rateKey = RATE_KEYS.find((k) => k === key);
    const durationKey = DURATION_KEYS.find((k) => k === key);
    if (rateKey) {
      if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new Error(`${key} must be a number in 0..1`);
      out[rateKey] = v;
    } else if (durationKey) {
      if (typeof v !== 'number' || !(v >= 0 && Number.isFinite(v)))
        throw new Error(`${key} must be a number ≥ 0`);
      out[durationKey] = v;
    } else if (key === 'latencyFactor') {
      if (typeof v !== 'number' || !(v > 0 && v <= 100))
        throw new Error('latencyFactor must be a number in (0, 100]');
      out.latencyFactor = v;
    } else if (key === 'down') {
      if (typeof v !== 'boolean') throw new Error('down must be a boolean');
      out.down = v;
    } else throw new Error(`unknown fault "${key}"`);
  }
  return out;
}

/** One draw over disjoint intervals, so each rate is exact as long as they sum to ≤ 1. */
function pickFault(f: Faults, r: number): FaultKind | undefined {
  const table: [FaultKind, number][] = [
    ['error500', f.error500Rate],
    ['error503', f.error503Rate],
    ['rate429', f.rate429Rate],
    ['stall', f.stallRate],
    ['reset', f.resetRate],
    ['malformed', f.malformedRate],
  ];
  for (const [kind, rate] of table) {
    if (r < rate) return kind;
    r -= rate;
  }
  return undefined;
}

function errorJson(message: string, type: string, code: string | null, param: string | null = null): string {
  return JSON.stringify({ error: { message, type, param, code } });
}

function sendJson(
  res: ServerResponse,
  status: number,
  payload: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
    ...headers,
  });
  res.end(payload);
}

function bump(counts: Record<string, number>, key: string, by = 1): void {
  counts[key] = (counts[key] ?? 0) + by;
}

/** Undefined when the body exceeds `limit`; rejects when the client goes away mid-body. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c);
    });
    req.on('end', () => resolve(size > limit ? undefined : Buffer.concat(chunks, size)));
    req.on('error', reject);
    req.on('close', () => reject(new Error('client closed')));
  });
}

function validate(
  endpoint: Endpoint,
  body: Record<string, unknown>,
): { message: string; param: string } | undefined {
  if (typeof body.model !== 'string' || body.model === '')
    return { message: 'model is required', param: 'model' };
  const field = REQUIRED_FIELD[endpoint];
  const value = body[field];
  if (value === undefined || value === null || (field === 'messages' && !Array.isArray(value)))
    return {
      message: `${field} is required${field === 'messages' ? ' and must be an array' : ''}`,
      param: field,
    };
  // A batch backend never streams; answering a non-stream body to a stream client would hang it.
  if (body.stream === true) return { message: 'stream is not supported by the simulator', param: 'stream' };
  return undefined;
}

function emptyStats(): SimulatorStats {
  return {
    received: 0,
    completed: 0,
    inService: 0,
    queued: 0,
    maxInService: 0,
    aborted: 0,
    byStatus: {},
    byEndpoint: {},
    faultsInjected: {},
    outputTokens: 0,
  };
}

export async function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  const host = opts.host ?? '127.0.0.1';
  const capacity = opts.capacity ?? 64;
  const baseLatencyMs = opts.baseLatencyMs ?? 20;
  const perTokenMs = opts.perTokenMs ?? 1;
  const defaultOutputTokens = opts.defaultOutputTokens ?? 16;
  const model = opts.model ?? 'sim-model';
  const seed = opts.seed ?? 1;
  const maxBodyBytes = opts.maxBodyBytes ?? 10 * 1024 * 1024;

  let stats = emptyStats();
  let rand = mulberry32(seed);
  let faults: Faults = { ...NO_FAULTS };
  let downTimer: NodeJS.Timeout | undefined;
  // FIFO with lazy deletion: aborted entries stay in the array as 'done' and are skipped, so aborts are O(1).
  let queue: Job[] = [];
  let head = 0;

  function setFaults(f: Partial<Faults>): void {
    const { downForMs, ...rest } = parseFaults(f);
    faults = { ...faults, ...rest };
    if (rest.down !== undefined || downForMs !== undefined) clearTimeout(downTimer);
    if (downForMs !== undefined) {
      faults.down = true;
      downTimer = setTimeout(() => (faults.down = false), downForMs).unref();
    }
  }
  setFaults(opts.faults ?? {});

  function respond(
    res: ServerResponse,
    status: number,
    payload: string,
    headers?: Record<string, string>,
  ): void {
    sendJson(res, status, payload, headers);
    stats.completed++;
    bump(stats.byStatus, String(status));
  }

  function pump(): void {
    while (stats.queued > 0 && (capacity === 0 || stats.inService < capacity)) {
      const job = queue[head++];
      if (job.state !== 'queued') continue;
      stats.queued--;
      job.state = 'serving';
      stats.inService++;
      stats.maxInService = Math.max(stats.maxInService, stats.inService);
      job.timer = setTimeout(finish, job.serviceMs, job);
    }
    if (head === queue.length || head > 4096) {
      queue = queue.slice(head);
      head = 0;
    }
  }

  function finish(job: Job): void {
    job.state = 'done';
    stats.inService--;
    if (job.fault === 'reset') job.res.socket?.destroy();
    else {
      const { json, outputTokens: n } = simulatedResponse(job.endpoint, job.body, {
        requestId: job.requestId,
        created: Math.floor(Date.now() / 1000),
        defaultOutputTokens,
      });
      const payload = JSON.stringify(json);
      if (job.fault === 'malformed') respond(job.res, 200, payload.slice(0, payload.length >> 1));
      else {
        respond(job.res, 200, payload);
        stats.outputTokens += n;
      }
    }
    pump();
  }

  /** vLLM's own queue gauges, by the names vLLM's Prometheus endpoint uses (one engine). */
  function sendMetrics(res: ServerResponse): void {
    if (faults.down) return sendJson(res, 503, errorJson('simulated upstream down', 'server_error', null));
    const labels = `{model_name=${JSON.stringify(model)},engine="0"}`;
    const text = [
      '# HELP vllm:num_requests_running Number of requests in model execution batches.',
      '# TYPE vllm:num_requests_running gauge',
      `vllm:num_requests_running${labels} ${stats.inService}`,
      '# HELP vllm:num_requests_waiting Number of requests waiting to be processed.',
      '# TYPE vllm:num_requests_waiting gauge',
      `vllm:num_requests_waiting${labels} ${stats.queued}`,
      '',
    ].join('\n');
    res.writeHead(200, {
      'content-type': 'text/plain; version=0.0.4',
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  }

  function onClose(res: ServerResponse, job: Job | undefined): void {
    if (res.writableFinished || job?.state === 'done') return;
    stats.aborted++;
    if (!job) return;
    if (job.state === 'queued') stats.queued--;
    else {
      clearTimeout(job.timer);
      stats.inService--;
    }
    job.state = 'done';
    pump();
  }

  async function control(req: IncomingMessage, res: ServerResponse, route: string): Promise<void> {
    if (route === 'GET /sim/stats') return sendJson(res, 200, JSON.stringify(simulator.stats()));
    if (route === 'POST /sim/reset') {
      simulator.reset();
      return sendJson(res, 200, JSON.stringify({ ok: true }));
    }
    if (route !== 'POST /sim/faults')
      return sendJson(res, 404, errorJson(`no route ${route}`, 'invalid_request_error', 'not_found'));
    const raw = await readBody(req, maxBodyBytes);
    try {
      setFaults(parseFaults(JSON.parse(raw?.toString() ?? '')));
    } catch (e) {
      return sendJson(
        res,
        400,
        errorJson(e instanceof Error ? e.message : String(e), 'invalid_request_error', null),
      );
    }
    sendJson(res, 200, JSON.stringify(faults));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = randomUUID().replace(/-/g, '');
    res.setHeader('x-request-id', `req_${requestId}`);
    const url = req.url ?? '/';
    const path = url.includes('?') ? url.slice(0, url.indexOf('?')) : url;
    const route = `${req.method} ${path}`;
    if (path.startsWith('/sim/')) return control(req, res, route);
    // Scrapes are not traffic: they stay out of the counters, like the control routes.
    if (route === 'GET /metrics') return sendMetrics(res);

    // Filled in once the request is queued; a client may leave before that.
    const slot: { job?: Job } = {};
    res.on('close', () => onClose(res, slot.job));
    stats.received++;
    const endpoint = req.method === 'POST' ? INFERENCE[path] : undefined;
    const known = endpoint ?? (route === 'GET /health' || route === 'GET /v1/models' ? path : undefined);
    bump(stats.byEndpoint, known ?? 'other');
    if (faults.down) {
      bump(stats.faultsInjected, 'down');
      return respond(res, 503, errorJson('simulated upstream down', 'server_error', 'service_unavailable'));
    }
    if (route === 'GET /health') return respond(res, 200, '{"status":"ok"}');
    if (!known)
      return respond(res, 404, errorJson(`no route ${route}`, 'invalid_request_error', 'not_found'));
    if (opts.apiKey !== undefined && req.headers.authorization !== `Bearer ${opts.apiKey}`)
      return respond(res, 401, errorJson('invalid API key', 'invalid_request_error', 'invalid_api_key'));
    if (!endpoint) {
      const data = [{ id: model, object: 'model', created: 0, owned_by: 'besh-simulator' }];
      return respond(res, 200, JSON.stringify({ object: 'list', data }));
    }

    const tooLarge = () =>
      respond(res, 413, errorJson(`body exceeds ${maxBodyBytes} bytes`, 'invalid_request_error', null), {
        connection: 'close',
      });
    if (Number(req.headers['content-length'] ?? 0) > maxBodyBytes) return tooLarge();
    let raw: Buffer | undefined;
    try {
      raw = await readBody(req, maxBodyBytes);
    } catch {
      return; // the client left; onClose counted it
    }
    if (!raw) return tooLarge();
    let body: unknown;
    try {
      body = JSON.parse(raw.toString());
    } catch {
      body = undefined;
    }
    if (!isObject(body))
      return respond(res, 400, errorJson('body must be a JSON object', 'invalid_request_error', null));
    const invalid = validate(endpoint, body);
    if (invalid)
      return respond(res, 400, errorJson(invalid.message, 'invalid_request_error', null, invalid.param));

    // Faults are drawn here, before queueing. Errors answer at once, like a frontend rejecting work;
    // stall, reset and malformed play out in service and hold a slot, like a sick in-flight request.
    const fault = pickFault(faults, rand());
    if (fault) bump(stats.faultsInjected, fault);
    if (fault === 'error500')
      return respond(res, 500, errorJson('simulated internal error', 'server_error', null));
    if (fault === 'error503')
      return respond(res, 503, errorJson('simulated overload', 'server_error', 'service_unavailable'));
    if (fault === 'rate429')
      return respond(res, 429, errorJson('simulated rate limit', 'requests', 'rate_limit_exceeded'), {
        'retry-after': String(faults.retryAfterSeconds),
      });

    const serviceMs =
      (baseLatencyMs + perTokenMs * outputTokens(endpoint, body, defaultOutputTokens)) *
        faults.latencyFactor +
      (fault === 'stall' ? faults.stallMs : 0);
    const job: Job = { endpoint, body, requestId, res, fault, serviceMs, state: 'queued' };
    slot.job = job;
    queue.push(job);
    stats.queued++;
    pump();
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendJson(res, 500, errorJson('simulator bug', 'server_error', null));
      else res.destroy();
    });
  });
  // Longer than any client's idle timeout, so the client always closes first and never reuses a dying socket.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  const simulator: Simulator = {
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/v1`,
    stats: () => ({
      ...stats,
      byStatus: { ...stats.byStatus },
      byEndpoint: { ...stats.byEndpoint },
      faultsInjected: { ...stats.faultsInjected },
    }),
    reset() {
      stats = {
        ...emptyStats(),
        inService: stats.inService,
        queued: stats.queued,
        maxInService: stats.inService,
      };
      rand = mulberry32(seed);
    },
    setFaults,
    close() {
      clearTimeout(downTimer);
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Dropping the sockets fires every pending response's 'close', which clears its timer.
        server.closeAllConnections();
      });
    },
  };
  return simulator;
}
