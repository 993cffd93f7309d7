/**
 * End to end on real processes: the Temporal dev server, the API and a worker as separate processes (so their
 * peak RSS can be read from /proc), the vLLM simulator in this process. Uploads an N-request JSONL with the
 * official openai SDK, downloads it back byte-identical, runs it as a batch and reports what it measured.
 *
 *   npx ts-node bench/e2e.ts --requests 50000 --line-bytes 4000 [--db sqlite|postgres] [--capacity 256]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import OpenAI from 'openai';
import { Client, Connection } from '@temporalio/client';
import { Client as PgClient } from 'pg';
import { projectRoot } from '../src/paths';
import { startSimulator } from '../src/simulator/server';
import { startDevServer } from '../temporal/dev-server';
import { freePort } from '../test/support/ports';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '50000' },
    'line-bytes': { type: 'string', default: '4000' },
    db: { type: 'string', default: 'sqlite' },
    capacity: { type: 'string', default: '256' },
    'latency-ms': { type: 'string', default: '20' },
    'max-workers': { type: 'string', default: '256' },
    out: { type: 'string' },
  },
});
const N = Number(values.requests);
const LINE_BYTES = Number(values['line-bytes']);

const peakRssMb = (pid: number) => {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
};
const cpuSeconds = (pid: number) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in clock ticks of 1/100 s
};

function writeInput(file: string): string {
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'w');
  const filler = 'lorem ipsum dolor sit amet '.repeat(Math.ceil(LINE_BYTES / 27));
  for (let i = 0; i < N; i++) {
    const body = {
      model: 'sim-model',
      max_tokens: 16,
      messages: [
        { role: 'system', content: 'You are a helpful assistant.' },
        { role: 'user', content: `Request ${i}: ${filler}`.slice(0, LINE_BYTES - 200) },
      ],
    };
    const line =
      JSON.stringify({ custom_id: `req-${i}`, method: 'POST', url: '/v1/chat/completions', body }) + '\n';
    hash.update(line);
    fs.writeSync(fd, line);
  }
  fs.closeSync(fd);
  return hash.digest('hex');
}

function start(entry: string, env: Record<string, string>, log: string): ChildProcess {
  const out = fs.openSync(log, 'w');
  return spawn(process.execPath, [path.join(projectRoot, 'dist', 'src', 'main', `${entry}.js`)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', out, out],
  });
}

async function main() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'besh-bench-'));
  const input = path.join(work, 'input.jsonl');
  const inputSha = writeInput(input);
  const inputBytes = fs.statSync(input).size;
  console.log(`input: ${N} requests, ${(inputBytes / 1e6).toFixed(1)} MB`);

  const temporal = await startDevServer({
    port: await freePort(),
    uiPort: null,
    dbFile: path.join(work, 'temporal.sqlite'),
  });
  const sim = await startSimulator({
    capacity: Number(values.capacity),
    baseLatencyMs: Number(values['latency-ms']),
    perTokenMs: 0,
  });
  const key = `sk-bench-${randomBytes(12).toString('hex')}`;
  let dbEnv: Record<string, string> = {};
  let dropDb = async () => undefined as unknown;
  if (values.db === 'postgres') {
    const name = `besh_bench_${randomBytes(4).toString('hex')}`;
    const admin = new PgClient({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    dbEnv = { DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${name}` };
    dropDb = async () => {
      const c = new PgClient({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    };
  }
  const port = await freePort();
  const env = {
    DATA_DIR: path.join(work, 'data'),
    TEMPORAL_ADDRESS: temporal.address,
    VLLM_BASE_URL: sim.url,
    BESH_API_KEYS: key,
    BESH_PORT: String(port),
    MAX_WORKERS: values['max-workers']!,
    ...dbEnv,
  };
  const api = start('api', env, path.join(work, 'api.log'));
  await new Promise((r) => setTimeout(r, 300));
  const worker = start('worker', env, path.join(work, 'worker.log'));
  const baseURL = `http://127.0.0.1:${port}/v1`;
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) break;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const openai = new OpenAI({ apiKey: key, baseURL, timeout: 600_000 });

  let t = Date.now();
  const file = await openai.files.create({ file: fs.createReadStream(input), purpose: 'batch' });
  const uploadS = (Date.now() - t) / 1000;
  t = Date.now();
  const res = await openai.files.content(file.id);
  const dl = createHash('sha256');
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) dl.update(chunk);
  const downloadS = (Date.now() - t) / 1000;
  const identical = dl.digest('hex') === inputSha;
  const apiRssAfterUpload = peakRssMb(api.pid!);
  console.log(
    `upload ${uploadS.toFixed(1)} s, download ${downloadS.toFixed(1)} s, identical=${identical}, API peak RSS ${apiRssAfterUpload} MB`,
  );

  t = Date.now();
  const batch = await openai.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
  });
  let firstRequestMs: number | null = null;
  let b = batch;
  while (!['completed', 'failed', 'expired', 'cancelled'].includes(b.status)) {
    await new Promise((r) => setTimeout(r, 250));
    if (firstRequestMs === null && sim.stats().received > 0) firstRequestMs = Date.now() - t;
    b = await openai.batches.retrieve(batch.id);
  }
  const wallS = (Date.now() - t) / 1000;
  const client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
  const history = await client.workflow.getHandle(batch.id).fetchHistory();
  const result = {
    machine: `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.cpus()[0].model}`,
    db: values.db,
    requests: N,
    inputMB: +(inputBytes / 1e6).toFixed(1),
    uploadSeconds: uploadS,
    downloadSeconds: downloadS,
    byteIdentical: identical,
    apiPeakRssMB: peakRssMb(api.pid!),
    status: b.status,
    counts: b.request_counts,
    batchWallSeconds: wallS,
    requestsPerSecond: Math.round(N / wallS),
    startLatencyMs: firstRequestMs,
    workerPeakRssMB: peakRssMb(worker.pid!),
    workerCpuSeconds: cpuSeconds(worker.pid!),
    apiCpuSeconds: cpuSeconds(api.pid!),
    historyEvents: history.events?.length,
    upstreamReceived: sim.stats().received,
  };
  console.log(JSON.stringify(result, null, 2));
  if (values.out) fs.writeFileSync(values.out, JSON.stringify(result, null, 2) + '\n');
  api.kill('SIGTERM');
  worker.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 3000));
  await client.connection.close();
  await sim.close();
  await temporal.stop();
  await dropDb();
  fs.rmSync(work, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
