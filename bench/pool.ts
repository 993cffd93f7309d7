// The simulated vLLM pool of a benchmark: N replicas in one child process (bench/pool-child.ts), apart from
// the harness so that the direct client and the pool do not share an event loop. The child reads every
// replica's counters in-process every 10 ms: /sim/stats over HTTP every 250 ms could not tell when the first
// request of a one-second batch arrived, and the ratios of the report are only as good as those marks.
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { projectRoot } from '../src/paths';
import { exited, type Processes } from './processes';

export interface PoolConfig {
  replicas: number;
  /** Concurrency slots per replica (vLLM's max_num_seqs); 0 = unlimited. */
  capacity: number;
  baseLatencyMs: number;
  perTokenMs: number;
}

/** Pool-wide counters at one instant; counts are relative to the start of the recording. */
export interface Recording {
  /** Epoch ms of each reading. */
  t: number[];
  received: number[];
  completed: number[];
  inService: number[];
  queued: number[];
  /** Per replica at the end: requests received, to check the balancer spread them. */
  perReplica: number[];
  /** Epoch ms of the reading at which a `FaultAt` was applied to every replica. */
  faultAt?: number;
}

/** Faults (as `POST /sim/faults` takes them) that every replica gets once this many answers have left the pool. */
export interface FaultAt {
  completed: number;
  faults: Record<string, unknown>;
}

export type ToChild =
  | { type: 'begin'; faultAt?: FaultAt }
  | { type: 'end' }
  | { type: 'faults'; faults: Record<string, unknown> };
export type FromChild =
  | { type: 'ready'; ports: number[] }
  | { type: 'begun' }
  | { type: 'recording'; recording: Recording }
  | { type: 'faultsSet' }
  | { type: 'error'; message: string };

export class Pool {
  private constructor(
    readonly config: PoolConfig,
    readonly child: ChildProcess,
    readonly ports: number[],
  ) {}

  /** Total concurrency slots; 0 when unlimited. */
  get slots(): number {
    return this.config.capacity * this.config.replicas;
  }

  static async start(config: PoolConfig, procs: Processes): Promise<Pool> {
    const out = procs.log('pool');
    const child = fork(path.join(__dirname, 'pool-child.ts'), [JSON.stringify(config)], {
      cwd: projectRoot,
      execArgv: ['-r', 'ts-node/register'],
      stdio: ['ignore', out, out, 'ipc'],
    });
    procs.track('pool', child, 5_000);
    const ready = await Promise.race([
      next(child, 'ready'),
      exited(child).then(() => {
        throw new Error('the simulator pool exited at start (see pool.log)');
      }),
    ]);
    return new Pool(config, child, ready.ports);
  }

  /** Zeroes the counters and starts recording; `faultAt` arms a change of faults for this recording. */
  async begin(faultAt?: FaultAt): Promise<void> {
    const reply = next(this.child, 'begun');
    this.child.send({ type: 'begin', faultAt } satisfies ToChild);
    await reply;
  }

  /** Every replica's faults, now (rejects with the simulator's message on an unknown or invalid fault). */
  async setFaults(faults: Record<string, unknown>): Promise<void> {
    const reply = next(this.child, 'faultsSet');
    this.child.send({ type: 'faults', faults } satisfies ToChild);
    await reply;
  }

  async end(): Promise<Recording> {
    const reply = next(this.child, 'recording');
    this.child.send({ type: 'end' } satisfies ToChild);
    return (await reply).recording;
  }
}

function next<K extends FromChild['type']>(
  child: ChildProcess,
  type: K,
): Promise<Extract<FromChild, { type: K }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: FromChild) => {
      if (m.type !== type && m.type !== 'error') return;
      child.off('message', onMessage);
      if (m.type === 'error') reject(new Error(`simulator pool: ${m.message}`));
      else resolve(m as Extract<FromChild, { type: K }>);
    };
    child.on('message', onMessage);
  });
}
