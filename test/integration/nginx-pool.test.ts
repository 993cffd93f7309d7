import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../../src/paths';
import { startSimulator, type Simulator, type SimulatorStats } from '../../src/simulator/server';
import { assertEveryLineOnce, batchLines, createBatch, toJsonl, waitForBatch } from '../support/batches';
import { testOutputDir } from '../support/global';
import { freePort } from '../support/ports';
import { exited, until } from '../support/processes';
import { startStack, type Stack } from '../support/stack';
import { findNginx, loopbackNginxArgs } from '../support/nginx';

const REPLICAS = 8;
const FIRST_PORT = 8001; // the host ports of vllm-1..vllm-8 in docker-compose.8gpu.yml
const LINES = 3000;
const KILL_AFTER = 1000; // requests received by the pool before one replica goes away
const VICTIM = 3; // vllm-4

/** Debian's nginx, which `make deploy-tools` installs; null when it is not there. */
/** Eight simulated vLLM servers on 8001-8008 as in the compose file, or on free ports when those are taken. */
async function startReplicas(): Promise<{ sims: Simulator[]; note: string }> {
  const opts = { capacity: 4, baseLatencyMs: 40, perTokenMs: 0 };
  const sims: Simulator[] = [];
  try {
    for (let i = 0; i < REPLICAS; i++) sims.push(await startSimulator({ ...opts, port: FIRST_PORT + i }));
    return {
      sims,
      note: `replicas on ${FIRST_PORT}-${FIRST_PORT + REPLICAS - 1}, as in docker-compose.8gpu.yml`,
    };
  } catch (err) {
    await Promise.all(sims.map((s) => s.close()));
    const reason = err instanceof Error ? err.message : String(err);
    const fallback: Simulator[] = [];
    for (let i = 0; i < REPLICAS; i++) fallback.push(await startSimulator({ ...opts, port: 0 }));
    return {
      sims: fallback,
      note: `ports ${FIRST_PORT}-${FIRST_PORT + REPLICAS - 1} unavailable (${reason}); replicas on free ports ${fallback.map((s) => s.port).join(', ')} instead`,
    };
  }
}

describe('nginx pool: the 8-GPU load balancer config in front of eight vLLM replicas', function () {
  this.timeout(180_000);
  let tmp: string | undefined;
  let sims: Simulator[] = [];
  let nginx: ChildProcess | undefined;
  let nginxPort: number;
  let s: Stack | undefined;
  const closed = new Set<Simulator>();

  before(async function () {
    const nginxBin = findNginx();
    if (!nginxBin) {
      console.log(
        '      skipped: nginx is not installed; `make deploy-tools` (or `make check-deploy`) installs it',
      );
      this.skip();
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'besh-nginx-'));
    const replicas = await startReplicas();
    sims = replicas.sims;
    console.log(`      ${replicas.note}`);
    nginxPort = await freePort();
    // The project's nginx/nginx-8gpu.conf with vllm-N:8000 -> 127.0.0.1:<port N>, listen -> the free port, and
    // pid/log/temp paths under tmp. The same rewrite `make check-deploy` runs nginx -t on.
    const dir = tmp;
    execFileSync('bash', [
      path.join(projectRoot, 'scripts', 'nginx-loopback-conf.sh'),
      path.join(projectRoot, 'nginx', 'nginx-8gpu.conf'),
      dir,
      String(nginxPort),
      ...sims.map((sim) => String(sim.port)),
    ]);
    const log = fs.openSync(path.join(testOutputDir, 'nginx-pool.log'), 'w');
    nginx = spawn(nginxBin, loopbackNginxArgs(dir), { stdio: ['ignore', log, log] });
    const health = `http://127.0.0.1:${nginxPort}/health`;
    await until('nginx /health', async () => (await fetch(health).catch(() => null))?.status === 200, 20_000);
    // /health is proxied: with every replica down it must not say 200 (the original BESH answered 200 regardless).
    for (const sim of sims) sim.setFaults({ down: true });
    assert.equal((await fetch(health)).status, 503, 'nginx /health reflects the upstreams');
    for (const sim of sims) {
      sim.setFaults({ down: false });
      sim.reset();
    }

    s = await startStack({ env: { VLLM_BASE_URL: `http://127.0.0.1:${nginxPort}/v1`, MAX_WORKERS: '32' } });
  });

  after(async () => {
    await s?.close();
    if (nginx) {
      nginx.kill('SIGTERM');
      await exited(nginx);
    }
    await Promise.all(sims.filter((sim) => !closed.has(sim)).map((sim) => sim.close()));
    if (tmp) {
      // Keep nginx's own logs beside the other test logs.
      for (const name of ['error.log', 'access.log']) {
        const file = path.join(tmp, 'logs', name);
        if (fs.existsSync(file)) fs.copyFileSync(file, path.join(testOutputDir, `nginx-pool-${name}`));
      }
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('spreads a batch over all eight replicas, and a replica killed mid-batch loses no request', async () => {
    const input = batchLines(LINES);
    const created = await createBatch(s!.openai, toJsonl(input));
    const received = () => sims.reduce((n, sim) => n + sim.stats().received, 0);
    await until(`${KILL_AFTER} requests through nginx`, () => received() >= KILL_AFTER, 60_000);
    // Kill the victim while it is serving requests: those connections drop, nginx answers them 502, and new
    // connections to its port are refused, so nginx sends the rest to the seven others.
    const victim = sims[VICTIM];
    await until('requests in flight on the victim', () => victim.stats().inService > 0, 10_000);
    const beforeKill: SimulatorStats[] = sims.map((sim) => sim.stats());
    closed.add(victim);
    await victim.close();
    const victimAtKill = victim.stats();

    const done = await waitForBatch(s!.openai, created.id, { timeoutMs: 120_000 });
    const after = sims.map((sim) => sim.stats());
    const total = after.reduce((n, st) => n + st.received, 0);
    const preKillTotal = beforeKill.reduce((n, st) => n + st.received, 0);
    const accessLog = fs.readFileSync(path.join(tmp!, 'logs', 'access.log'), 'utf8');
    const status502 = accessLog.split('\n').filter((l) => /" 502 /.test(l)).length;
    console.log(
      `      request split across the ${REPLICAS} replicas (${LINES} lines, replica ${VICTIM + 1} killed):`,
    );
    console.log('        replica  port   received  answered-200  share   before-kill');
    after.forEach((st, i) => {
      const row = [
        `vllm-${i + 1}${i === VICTIM ? '*' : ' '}`.padEnd(8),
        String(sims[i].port).padEnd(6),
        String(st.received).padStart(8),
        String(st.byStatus['200'] ?? 0).padStart(13),
        `${((100 * st.received) / total).toFixed(1)}%`.padStart(6),
        String(beforeKill[i].received).padStart(12),
      ];
      console.log(`        ${row.join(' ')}`);
    });
    const inFlight = beforeKill[VICTIM].inService + beforeKill[VICTIM].queued;
    console.log(
      `        total ${total} received for ${LINES} lines; ${inFlight} in flight on the victim when it was ` +
        `killed; nginx answered ${status502} with 502, which the worker retried`,
    );

    assert.equal(done.status, 'completed');
    const { out, err } = await assertEveryLineOnce(s!.openai, done, input);
    assert.equal(out.length, LINES, 'every line succeeded');
    assert.equal(err.length, 0, 'no line failed');
    assert.equal(s!.sim.stats().received, 0, 'every request went through nginx');
    // least_conn over identical replicas: each got a fair part of the load before the kill.
    for (const [i, st] of beforeKill.entries()) {
      assert.ok(
        st.received >= preKillTotal / REPLICAS / 3,
        `replica ${i + 1} got ${st.received} of ${preKillTotal} requests before the kill`,
      );
    }
    assert.equal(after[VICTIM].received, victimAtKill.received, 'nothing reached the killed replica');
    assert.ok(status502 >= 1, 'the kill dropped requests in flight, and nginx answered them 502');
    for (const [i, st] of after.entries()) {
      if (i !== VICTIM)
        assert.ok(st.received > beforeKill[i].received, `replica ${i + 1} kept serving after the kill`);
    }
    const answered = after.reduce((n, st) => n + (st.byStatus['200'] ?? 0), 0);
    assert.ok(answered >= LINES, `${answered} answers for ${LINES} lines`);
  });
});
