// CLI for the vLLM simulator: one server, or N replicas on consecutive ports in one process.
import { parseArgs } from 'node:util';
import { Faults, Simulator, SimulatorOptions, startSimulator } from './server';

const USAGE = `usage: node -r ts-node/register src/simulator/main.ts [flags]
  --host H                   listen address (default 127.0.0.1)
  --port P                   single server port (default 8000)
  --replicas N --base-port B N servers on ports B..B+N-1 (default base 8001); --port is then ignored
  --capacity C               requests in service at once per server, 0 = unlimited (default 64)
  --base-latency-ms MS       fixed service time (default 20)
  --per-token-ms MS          service time per output token (default 1)
  --default-output-tokens N  when the request sets no max tokens (default 16)
  --model NAME               name listed by /v1/models (default sim-model)
  --error500-rate R --error503-rate R --rate429-rate R --stall-rate R --reset-rate R --malformed-rate R
                             fault fractions 0..1
  --retry-after-seconds S    Retry-After of simulated 429s (default 1)
  --stall-ms MS              how long a stalled request hangs (default 30000)
  --seed N                   fault PRNG seed; replica i uses seed+i (default 1)
  --api-key K                require Authorization: Bearer K
Each flag can also come from SIM_<FLAG> in the environment (e.g. SIM_BASE_PORT); flags win.`;

export class UsageError extends Error {}

interface NumberFlag {
  integer?: boolean;
  min: number;
  max?: number;
}
const NUMBER_FLAGS: Record<string, NumberFlag> = {
  port: { integer: true, min: 0, max: 65535 },
  replicas: { integer: true, min: 1, max: 1000 },
  'base-port': { integer: true, min: 1, max: 65535 },
  capacity: { integer: true, min: 0 },
  'base-latency-ms': { min: 0 },
  'per-token-ms': { min: 0 },
  'default-output-tokens': { integer: true, min: 1 },
  'error500-rate': { min: 0, max: 1 },
  'error503-rate': { min: 0, max: 1 },
  'rate429-rate': { min: 0, max: 1 },
  'stall-rate': { min: 0, max: 1 },
  'reset-rate': { min: 0, max: 1 },
  'malformed-rate': { min: 0, max: 1 },
  'retry-after-seconds': { min: 0 },
  'stall-ms': { min: 0 },
  seed: { integer: true, min: 0, max: 2 ** 32 - 1 },
};
const STRING_FLAGS = ['host', 'model', 'api-key'];
const FAULT_FLAGS: Record<string, Exclude<keyof Faults, 'down' | 'downForMs'>> = {
  'error500-rate': 'error500Rate',
  'error503-rate': 'error503Rate',
  'rate429-rate': 'rate429Rate',
  'stall-rate': 'stallRate',
  'reset-rate': 'resetRate',
  'malformed-rate': 'malformedRate',
  'retry-after-seconds': 'retryAfterSeconds',
  'stall-ms': 'stallMs',
};

export interface CliConfig {
  /** One entry per server to start; each replica gets its own port and seed. */
  servers: SimulatorOptions[];
}

/** Throws UsageError naming the offending flag; returns 'help' for --help. */
export function parseCli(argv: string[], env: NodeJS.ProcessEnv): CliConfig | 'help' {
  const names = [...Object.keys(NUMBER_FLAGS), ...STRING_FLAGS];
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv,
      options: {
        help: { type: 'boolean', short: 'h' },
        ...Object.fromEntries(names.map((n) => [n, { type: 'string' as const }])),
      },
    }).values;
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  if (values.help) return 'help';
  const raw = (name: string): string | undefined => {
    const v = values[name];
    return typeof v === 'string' ? v : env[`SIM_${name.toUpperCase().replace(/-/g, '_')}`];
  };
  const num = (name: string): number | undefined => {
    const text = raw(name);
    if (text === undefined) return undefined;
    const { integer, min, max } = NUMBER_FLAGS[name];
    const n = text.trim() === '' ? NaN : Number(text);
    if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || (max !== undefined && n > max))
      throw new UsageError(
        `invalid --${name} "${text}": expected ${integer ? 'an integer' : 'a number'} ≥ ${min}` +
          (max !== undefined ? ` and ≤ ${max}` : ''),
      );
    return n;
  };

  const faults: Partial<Faults> = {};
  for (const [flag, key] of Object.entries(FAULT_FLAGS)) {
    const v = num(flag);
    if (v !== undefined) faults[key] = v;
  }
  const common: SimulatorOptions = {
    host: raw('host'),
    capacity: num('capacity'),
    baseLatencyMs: num('base-latency-ms'),
    perTokenMs: num('per-token-ms'),
    defaultOutputTokens: num('default-output-tokens'),
    model: raw('model'),
    apiKey: raw('api-key'),
    faults,
  };
  const seed = num('seed') ?? 1;
  const replicas = num('replicas');
  if (replicas === undefined) return { servers: [{ ...common, port: num('port') ?? 8000, seed }] };
  const basePort = num('base-port') ?? 8001;
  if (basePort + replicas - 1 > 65535)
    throw new UsageError(`invalid --replicas ${replicas}: ports exceed 65535`);
  // Distinct seeds, so replicas do not fail in lockstep.
  return {
    servers: Array.from({ length: replicas }, (_, i) => ({
      ...common,
      port: basePort + i,
      seed: (seed + i) >>> 0,
    })),
  };
}

async function main(): Promise<void> {
  let config: CliConfig | 'help';
  try {
    config = parseCli(process.argv.slice(2), process.env);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`vLLM simulator: ${e.message}\n${USAGE}`);
    process.exit(2);
  }
  if (config === 'help') {
    console.log(USAGE);
    return;
  }
  const started = await Promise.allSettled(config.servers.map((o) => startSimulator(o)));
  const sims = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failure = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  const stop = (code: number) =>
    void Promise.all(sims.map((s: Simulator) => s.close())).then(() => process.exit(code));
  if (failure) {
    console.error(
      `vLLM simulator: ${failure.reason instanceof Error ? failure.reason.message : String(failure.reason)}`,
    );
    return stop(1);
  }
  config.servers.forEach((o, i) => {
    const capacity = o.capacity ?? 64;
    console.log(
      `vLLM simulator listening on ${sims[i].url} (capacity ${capacity === 0 ? 'unlimited' : capacity})`,
    );
  });
  process.once('SIGINT', () => stop(0));
  process.once('SIGTERM', () => stop(0));
}

if (require.main === module) void main();
