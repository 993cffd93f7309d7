// Child process of bench/pool.ts: the simulator replicas and a 10 ms recorder of their counters.
import { parseFaults, startSimulator, type Simulator } from '../src/simulator/server';
import type { FaultAt, FromChild, PoolConfig, Recording, ToChild } from './pool';

const TICK_MS = 10;

function send(m: FromChild): void {
  process.send?.(m);
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2]) as PoolConfig;
  const sims: Simulator[] = [];
  for (let i = 0; i < config.replicas; i++) {
    sims.push(
      await startSimulator({
        capacity: config.capacity,
        baseLatencyMs: config.baseLatencyMs,
        perTokenMs: config.perTokenMs,
        seed: i + 1,
      }),
    );
  }
  let rec: Recording | null = null;
  let base = { received: 0, completed: 0, perReplica: [] as number[] };
  let timer: NodeJS.Timeout | undefined;
  let faultAt: FaultAt | undefined;
  const setFaults = (faults: Record<string, unknown>) => {
    const parsed = parseFaults(faults);
    for (const s of sims) s.setFaults(parsed);
  };
  const totals = () => {
    const all = sims.map((s) => s.stats());
    const sum = (k: 'received' | 'completed' | 'inService' | 'queued') => all.reduce((n, s) => n + s[k], 0);
    return {
      received: sum('received'),
      completed: sum('completed'),
      inService: sum('inService'),
      queued: sum('queued'),
      perReplica: all.map((s) => s.received),
    };
  };
  const read = () => {
    if (!rec) return;
    const now = totals();
    rec.t.push(Date.now());
    rec.received.push(now.received - base.received);
    rec.completed.push(now.completed - base.completed);
    rec.inService.push(now.inService);
    rec.queued.push(now.queued);
    if (faultAt && rec.completed[rec.completed.length - 1] >= faultAt.completed) {
      setFaults(faultAt.faults);
      rec.faultAt = rec.t[rec.t.length - 1];
      faultAt = undefined;
    }
  };

  process.on('message', (m: ToChild) => {
    if (m.type === 'begin') {
      try {
        // Checked now, so that a fault the simulator does not know fails the run before it starts.
        if (m.faultAt) parseFaults(m.faultAt.faults);
      } catch (e) {
        return send({ type: 'error', message: e instanceof Error ? e.message : String(e) });
      }
      faultAt = m.faultAt;
      const now = totals();
      base = { received: now.received, completed: now.completed, perReplica: now.perReplica };
      rec = { t: [], received: [], completed: [], inService: [], queued: [], perReplica: [] };
      read();
      clearInterval(timer);
      timer = setInterval(read, TICK_MS);
      send({ type: 'begun' });
    } else if (m.type === 'faults') {
      try {
        setFaults(m.faults);
      } catch (e) {
        return send({ type: 'error', message: e instanceof Error ? e.message : String(e) });
      }
      send({ type: 'faultsSet' });
    } else if (m.type === 'end' && rec) {
      clearInterval(timer);
      faultAt = undefined;
      read();
      rec.perReplica = totals().perReplica.map((n, i) => n - base.perReplica[i]);
      send({ type: 'recording', recording: rec });
      rec = null;
    }
  });
  // The harness went away (even killed): do not outlive it.
  process.on('disconnect', () => {
    void Promise.all(sims.map((s) => s.close())).finally(() => process.exit(0));
  });
  send({ type: 'ready', ports: sims.map((s) => s.port) });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
