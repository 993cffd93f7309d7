// Several hosts sharing nothing but PostgreSQL, Temporal, an S3 server and the vLLM pool (issue 15, part 5).
//
// Each host is a network namespace on the private bridge 10.201.0.0/24 (scripts/netns-hosts.sh): besh-svc
// 10.201.0.2 runs PostgreSQL (its own server, not the machine's), the Temporal dev server, moto's S3 server and the
// vLLM simulator; besh-api 10.201.0.10 the API; besh-w1 10.201.0.11 and besh-w2 10.201.0.12 a worker each. Every
// host has its own data folder. The test process stays in the root namespace (10.201.0.1 on the bridge) and is the
// client: the official openai SDK against the API over the bridge. Needs root; skips where namespaces cannot be
// made. Logs: test-output/hosts/.
import { Connection } from '@temporalio/client';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { Client as PgClient } from 'pg';
import { chunkSizeFor } from '../../activities/validate-input';
import { projectRoot } from '../../src/paths';
import type { SimulatorStats } from '../../src/simulator/server';
import { searchAttributeArgs, temporalCliPath } from '../../temporal/dev-server';
import {
  assertEveryLineOnce,
  batchLines,
  createBatch,
  downloadLines,
  toJsonl,
  waitForBatch,
} from '../support/batches';
import { until } from '../support/processes';
import {
  baseEnv,
  cannotMakeHosts,
  diskRoot,
  get,
  hostDisk,
  hostsDown,
  hostsUp,
  Lab,
  logDir,
  NET,
  pidsIn,
  setLink,
  type Host,
  type LabProcess,
} from './lab';

const N = 20_000;
const TERMINAL = new Set(['completed', 'failed', 'expired', 'cancelled']);
/** Per worker. With chunks of 400 (20,000 / 50), the workflow runs max(2, ceil(2 × 200 / 400)) = 2 chunks at once. */
const MAX_WORKERS = 200;
/** Simulated service time: with 200 requests in flight per worker, about 500 answers a second per worker host. */
const SIM_LATENCY_MS = 400;
const PORTS = { pg: 5432, temporal: 7233, s3: 9000, sim: 8000, api: 5000, metrics: 9464 };
const BUCKET = 'besh-hosts';

const tenantKey = `sk-hosts-${randomBytes(12).toString('hex')}`;
const operatorKey = `sk-hosts-op-${randomBytes(12).toString('hex')}`;
const node = process.execPath;
const dist = (...p: string[]) => path.join(projectRoot, 'dist', ...p);

function pgBinDir(): string {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const versions = fs
    .readdirSync('/usr/lib/postgresql')
    .filter((v) => fs.existsSync(`/usr/lib/postgresql/${v}/bin/postgres`))
    .sort((a, b) => Number(b) - Number(a));
  if (!versions.length) throw new Error('no PostgreSQL server under /usr/lib/postgresql/*/bin');
  return `/usr/lib/postgresql/${versions[0]}/bin`;
}

function motoServerPath(): string {
  const candidates = [
    process.env.MOTO_SERVER,
    path.join(projectRoot, '.tools', 'moto', 'bin', 'moto_server'),
  ];
  const found = candidates.find((c) => c && fs.existsSync(c));
  if (!found)
    throw new Error(`moto_server not found (${candidates.filter(Boolean).join(', ')}): run 'make tools'`);
  return found;
}

function userIds(name: string): { uid: number; gid: number } {
  return {
    uid: Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim()),
    gid: Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim()),
  };
}

const simUrl = `http://${NET.svc}:${PORTS.sim}`;
const s3Url = `http://${NET.svc}:${PORTS.s3}`;

async function simStats(): Promise<SimulatorStats> {
  return (await (await get(`${simUrl}/sim/stats`)).json()) as SimulatorStats;
}

/** Upstream requests one worker has made (its besh_upstream_requests_total), or null when it does not answer. */
async function workerRequests(addr: string): Promise<number | null> {
  try {
    const res = await get(`http://${addr}:${PORTS.metrics}/metrics`, {
      authorization: `Bearer ${operatorKey}`,
    });
    if (!res.ok) return null;
    return (await res.text())
      .split('\n')
      .filter((l) => l.startsWith('besh_upstream_requests_total'))
      .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
  } catch {
    return null;
  }
}

/** Keys in the bucket under a prefix (moto answers unsigned requests). */
async function bucketKeys(prefix: string): Promise<string[]> {
  const xml = await (await get(`${s3Url}/${BUCKET}?list-type=2&prefix=${encodeURIComponent(prefix)}`)).text();
  return [...xml.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]);
}

/** Files (not folders) under a directory, relative to it. */
function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

describe('Several hosts: API, two workers and the services each in their own network namespace', function () {
  this.timeout(600_000);
  const lab = new Lab();
  const workers: Partial<Record<'w1' | 'w2', LabProcess>> = {};
  let env: Record<string, string>;
  let openai: OpenAI;
  const results: Array<Record<string, string | number>> = [];
  const cleanUp = () => hostsDown();

  before(async function () {
    const reason = cannotMakeHosts();
    if (reason) {
      console.log(
        `  SKIP multi-host test: network namespaces cannot be made here (${reason}); it needs root and iproute2`,
      );
      this.skip();
    }
    for (const f of [
      dist('main', 'api.js'),
      dist('main', 'worker.js'),
      dist('src', 'simulator', 'main.js'),
    ]) {
      assert.ok(fs.existsSync(f), `${f} is missing: run 'make build' first`);
    }
    const temporal = temporalCliPath();
    const moto = motoServerPath();
    const pgBin = pgBinDir();

    // Leftovers of a crashed run go first; the namespaces go even when this process dies without its after hook.
    hostsDown();
    process.once('exit', cleanUp);
    fs.rmSync(logDir, { recursive: true, force: true });
    fs.mkdirSync(logDir, { recursive: true });
    fs.rmSync(diskRoot, { recursive: true, force: true });
    fs.mkdirSync(diskRoot, { recursive: true, mode: 0o755 }); // PostgreSQL's user must reach its folder in it
    hostsUp();

    // PostgreSQL: a cluster of its own in the services host, listening only on the bridge.
    const pgUser = userIds('postgres');
    const pgDisk = hostDisk('svc-pg', pgUser);
    const pgData = path.join(pgDisk, 'data');
    const init = spawnSync(
      path.join(pgBin, 'initdb'),
      ['-D', pgData, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'],
      { uid: pgUser.uid, gid: pgUser.gid, cwd: pgDisk, encoding: 'utf8' },
    );
    assert.equal(init.status, 0, `initdb failed: ${init.stderr}`);
    fs.appendFileSync(path.join(pgData, 'pg_hba.conf'), '\nhost all all 10.201.0.0/24 trust\n');
    const pg = lab.start(
      'postgres',
      'besh-svc',
      [
        path.join(pgBin, 'postgres'),
        '-D',
        pgData,
        '-c',
        `listen_addresses=${NET.svc}`,
        '-c',
        `port=${PORTS.pg}`,
        '-c',
        `unix_socket_directories=${pgDisk}`,
        '-c',
        'fsync=off',
        '-c',
        'max_connections=200',
      ],
      baseEnv({}),
      { asUser: pgUser },
    );

    // Temporal dev server, in memory, with BESH's search attributes.
    // All the host's addresses (its loopback and the bridge): the dev server's own services dial each other on
    // 127.0.0.1, and refuse to run when it listens on the bridge address alone.
    const temporalArgs = ['server', 'start-dev', '--ip', '0.0.0.0', '--port', String(PORTS.temporal)];
    temporalArgs.push('--headless', '--log-level', 'warn');
    temporalArgs.push(...searchAttributeArgs());
    const tp = lab.start('temporal', 'besh-svc', [temporal, ...temporalArgs], baseEnv({}));

    const sim = lab.start(
      'simulator',
      'besh-svc',
      [node, dist('src', 'simulator', 'main.js'), '--host', NET.svc, '--port', String(PORTS.sim)],
      baseEnv({ SIM_CAPACITY: '0', SIM_BASE_LATENCY_MS: String(SIM_LATENCY_MS), SIM_PER_TOKEN_MS: '0' }),
    );
    const s3 = lab.start('moto', 'besh-svc', [moto, '-H', NET.svc, '-p', String(PORTS.s3)], baseEnv({}));

    const pgAdmin = () =>
      new PgClient({ connectionString: `postgres://postgres@${NET.svc}:${PORTS.pg}/postgres` });
    await lab.waitFor(pg, 'PostgreSQL accepting connections', async () => {
      const c = pgAdmin();
      try {
        await c.connect();
        await c.query('SELECT 1');
        return true;
      } finally {
        await c.end().catch(() => undefined);
      }
    });
    const admin = pgAdmin();
    await admin.connect();
    await admin.query('CREATE DATABASE besh');
    await admin.end();
    await lab.waitFor(tp, 'Temporal answering', async () => {
      const conn = await Connection.connect({
        address: `${NET.svc}:${PORTS.temporal}`,
        connectTimeout: 1000,
      });
      try {
        await conn.healthService.check({});
        return true;
      } finally {
        await conn.close();
      }
    });
    await lab.waitFor(sim, 'simulator answering', async () => (await get(`${simUrl}/sim/stats`)).ok);
    await lab.waitFor(s3, 'moto answering', async () => (await get(`${s3Url}/`)).ok);
    const made = await fetch(`${s3Url}/${BUCKET}`, { method: 'PUT', signal: AbortSignal.timeout(5_000) });
    assert.ok(made.ok, `creating bucket ${BUCKET}: HTTP ${made.status}`);

    // What every BESH host shares: addresses on the bridge, never a path. Uploads, checkpoints and results are
    // objects in the bucket.
    env = {
      DATABASE_URL: `postgres://postgres@${NET.svc}:${PORTS.pg}/besh`,
      TEMPORAL_ADDRESS: `${NET.svc}:${PORTS.temporal}`,
      TEMPORAL_TASK_QUEUE: 'besh-hosts',
      VLLM_BASE_URL: `${simUrl}/v1`,
      BESH_API_KEYS: tenantKey,
      BESH_OPERATOR_KEYS: operatorKey,
      MAX_WORKERS: String(MAX_WORKERS),
      WORKER_PROCESSES: '1',
      CONCURRENCY_MODE: 'fixed',
      HEARTBEAT_TIMEOUT_SECONDS: '5',
      SHUTDOWN_GRACE_SECONDS: '2',
      BLOB_STORE: 's3',
      S3_ENDPOINT: s3Url,
      S3_REGION: 'us-east-1',
      S3_BUCKET: BUCKET,
      S3_FORCE_PATH_STYLE: 'true',
      S3_ACCESS_KEY_ID: 'testing',
      S3_SECRET_ACCESS_KEY: 'testing',
    };

    const api = lab.start(
      'api',
      'besh-api',
      [node, dist('main', 'api.js')],
      baseEnv({ ...env, DATA_DIR: hostDisk('api'), BESH_HOST: NET.api, BESH_PORT: String(PORTS.api) }),
    );
    await lab.waitFor(
      api,
      'API healthy',
      async () => (await get(`http://${NET.api}:${PORTS.api}/health`)).ok,
    );
    // The API has migrated the database; the workers start after it, together, so they do not race to.
    await Promise.all([ensureWorker('w1'), ensureWorker('w2')]);
    openai = new OpenAI({
      apiKey: tenantKey,
      baseURL: `http://${NET.api}:${PORTS.api}/v1`,
      maxRetries: 0,
      timeout: 120_000,
    });
  });

  let generation = 0;
  function startWorker(which: 'w1' | 'w2'): LabProcess {
    const host: Host = which === 'w1' ? 'besh-w1' : 'besh-w2';
    const dir = path.join(diskRoot, which);
    if (!fs.existsSync(dir)) hostDisk(which);
    return lab.start(
      `worker-${which}-${generation++}`,
      host,
      [node, '--max-old-space-size=512', dist('main', 'worker.js')],
      baseEnv({ ...env, DATA_DIR: dir, WORKER_METRICS_PORT: String(PORTS.metrics) }),
    );
  }
  /** Starts the host's worker unless it runs, and waits until it serves its metrics. */
  async function ensureWorker(which: 'w1' | 'w2'): Promise<void> {
    const p = workers[which];
    if (p && p.child.exitCode === null && p.child.signalCode === null) return;
    const started = (workers[which] = startWorker(which));
    await lab.waitFor(
      started,
      'worker serving metrics',
      async () => (await workerRequests(NET[which])) !== null,
    );
  }

  after(async function () {
    this.timeout(60_000);
    await lab.stop();
    hostsDown();
    process.removeListener('exit', cleanUp);
    fs.rmSync(diskRoot, { recursive: true, force: true });
    if (results.length) {
      console.log('\n  Multi-host results');
      for (const r of results) console.log(`  ${JSON.stringify(r)}`);
      fs.writeFileSync(path.join(logDir, 'results.json'), JSON.stringify(results, null, 2) + '\n');
    }
  });

  /**
   * Runs a 20,000-request batch over both workers, breaks worker host 1 once both have answered requests and the
   * batch is past a fifth, and checks that it completes on worker 2 with every line exactly once.
   */
  async function scenario(fault: 'kill -9' | 'link cut', breakHost: () => Promise<void>) {
    await fetch(`${simUrl}/sim/reset`, { method: 'POST', signal: AbortSignal.timeout(3_000) });
    const w2Before = (await workerRequests(NET.w2)) ?? 0;
    const started = Date.now();
    const input = batchLines(N);
    const created = await createBatch(openai, toJsonl(input));
    const uploadedMs = Date.now() - started;

    let atBreak = { w1: 0, w2: 0, received: 0, status: created.status as string };
    await until(
      'both workers answering and the batch past a fifth',
      async () => {
        const [w1, w2, sim, batch] = await Promise.all([
          workerRequests(NET.w1),
          workerRequests(NET.w2),
          simStats(),
          openai.batches.retrieve(created.id),
        ]);
        atBreak = { w1: w1 ?? 0, w2: (w2 ?? 0) - w2Before, received: sim.received, status: batch.status };
        if (sim.received >= N || TERMINAL.has(batch.status)) {
          const hint =
            atBreak.w2 === 0 || atBreak.w1 === 0
              ? "; one worker got no chunk: is eager activity dispatch keeping them on the workflow's worker?"
              : '';
          throw new Error(`the batch got too far before the fault (${JSON.stringify(atBreak)})${hint}`);
        }
        return atBreak.w1 > 0 && atBreak.w2 > 0 && sim.received >= N / 5;
      },
      120_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last seen ${JSON.stringify(atBreak)}`);
    });
    // Checkpoints live in the bucket, where the surviving host finds them, not on the host that dies.
    const segmentsAtBreak = (await bucketKeys(`parts/${created.id}.`)).length;
    await breakHost();
    const brokeMs = Date.now() - started;

    const done = await waitForBatch(openai, created.id, { timeoutMs: 300_000 });
    const wallMs = Date.now() - started;
    const sim = await simStats();
    assert.equal(done.status, 'completed', `batch ${done.id} ended ${done.status}`);
    const { out, err } = await assertEveryLineOnce(openai, done, input);
    assert.equal(out.length + err.length, N);
    const w2After = ((await workerRequests(NET.w2)) ?? 0) - w2Before;
    assert.ok(w2After > atBreak.w2, 'worker 2 carried on after worker host 1 broke');

    // A re-run chunk sends again at most what its host had not yet checkpointed: never more than the chunks that
    // host held, whole.
    const chunk = chunkSizeFor(N);
    const window = Math.min(64, Math.max(2, Math.ceil((2 * MAX_WORKERS) / chunk)));
    const resent = sim.received - N;
    assert.ok(resent >= 0, `${sim.received} requests reached the simulator for ${N} lines`);
    assert.ok(
      resent <= window * chunk,
      `${resent} requests were sent again (at most ${window} chunks of ${chunk})`,
    );

    const stored = await bucketKeys('files/');
    assert.ok(stored.includes(`files/${done.output_file_id}`), 'the output file is in the S3 bucket');
    assert.ok(segmentsAtBreak > 0, 'checkpoint segments were in the bucket when the host broke');
    // The batch's cleanup step removes them right after the final status is recorded.
    await until(
      "the batch's segments removed from the bucket",
      async () => (await bucketKeys(`parts/${created.id}.`)).length === 0,
      30_000,
    );
    for (const w of ['w1', 'w2'])
      assert.deepEqual(filesUnder(path.join(diskRoot, w)), [], `nothing on ${w}'s disk`);
    const result = {
      fault,
      lines: N,
      output: out.length,
      errors: err.length,
      sentBeforeBreak: atBreak.received,
      worker1BeforeBreak: atBreak.w1,
      worker2BeforeBreak: atBreak.w2,
      worker2Total: w2After,
      resent,
      segmentsAtBreak,
      uploadAndCreateMs: uploadedMs,
      brokeAtMs: brokeMs,
      wallMs,
    };
    results.push(result);
    console.log(`  ${JSON.stringify(result)}`);
    return { done, out, err };
  }

  it('a 20,000-request batch completes on worker 2 after worker host 1 is killed (kill -9), every line once', async () => {
    await Promise.all([ensureWorker('w1'), ensureWorker('w2')]);
    await scenario('kill -9', async () => {
      const pids = pidsIn('besh-w1');
      assert.ok(pids.length > 0, 'worker host 1 runs processes');
      for (const pid of pids) process.kill(pid, 'SIGKILL');
      await until('worker host 1 has no process left', () => pidsIn('besh-w1').length === 0, 10_000);
    });
  });

  it('a 20,000-request batch completes on worker 2 while worker host 1 is cut off the network, every line once', async () => {
    // After the kill test, a fresh worker on host 1, on the data folder it had.
    await Promise.all([ensureWorker('w1'), ensureWorker('w2')]);
    try {
      const { done, out, err } = await scenario('link cut', async () => setLink('besh-w1', 'down'));
      // Back on the network, the cut-off worker finds its work taken over; the finished files stay as they are.
      setLink('besh-w1', 'up');
      await lab.stop([workers.w1!]);
      assert.deepEqual(await downloadLines(openai, done.output_file_id), out);
      assert.deepEqual(await downloadLines(openai, done.error_file_id), err);
    } finally {
      setLink('besh-w1', 'up');
    }
  });
});
