import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import type { DataSource } from 'typeorm';
import type { ApiKeys } from '../../src/auth/api-keys';
import { loadConfig, type Config } from '../../src/config';
import { composeApi, createApiServer } from '../../main/api';
import { openServices } from '../../main/services';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/simulator/server';
import type { BlobStore } from '../../src/storage/blob-store';
import { S3BlobStore } from '../../src/storage/s3-blob-store';
import { createBatchWorker, type BatchWorker } from '../../temporal/worker';
import { createTestDatabase } from './database';
import { createTestBucket, listUploads, s3Env, testBlobStoreKind } from './s3';

export interface StackOptions {
  env?: Record<string, string>;
  simulator?: SimulatorOptions;
  /** Start an in-process worker (default true). */
  worker?: boolean;
  /** Upstream pools (UPSTREAMS), each a simulator of its own serving `models`; `stack.pools` holds them. */
  pools?: Record<string, { models: string[]; simulator?: SimulatorOptions }>;
}

export interface Stack {
  config: Config;
  env: Record<string, string>;
  db: DataSource;
  /** Uploads and results (the `files` store). */
  blobs: BlobStore;
  /** Chunk checkpoint segments. */
  parts: BlobStore;
  keys: ApiKeys;
  temporal: Client;
  sim: Simulator;
  /** The simulators of `opts.pools`, by pool name. */
  pools: Record<string, Simulator>;
  baseURL: string;
  /** Two tenants, each with its own key. */
  keyA: string;
  keyB: string;
  openai: OpenAI;
  openaiB: OpenAI;
  worker: BatchWorker | null;
  workerDone: Promise<void> | null;
  /**
   * The keys of every stored file blob and of every write left unfinished (a temp file locally, a multipart upload
   * on S3): what a failed upload must not leave behind.
   */
  storedFiles(): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * Real parts for one test file: a fresh database, a simulator upstream, the Koa app listening on a free port,
 * and (optionally) an in-process worker on a task queue of its own, against the run's Temporal dev server.
 * With BESH_TEST_BLOB_STORE=s3 the blobs live in a bucket of its own on the run's moto server (`env` says so, for
 * the processes a test starts too).
 */
export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const database = await createTestDatabase();
  const bucket = testBlobStoreKind === 's3' ? await createTestBucket() : null;
  const simulator = (o?: SimulatorOptions) =>
    startSimulator({ baseLatencyMs: 2, perTokenMs: 0, capacity: 64, ...o });
  const sim = await simulator(opts.simulator);
  const pools: Record<string, Simulator> = {};
  for (const [name, p] of Object.entries(opts.pools ?? {})) pools[name] = await simulator(p.simulator);
  const upstreams = Object.fromEntries(
    Object.entries(opts.pools ?? {}).map(([name, p]) => [
      name,
      { urls: [pools[name].url], models: p.models },
    ]),
  );
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'besh-data-'));
  const keyA = `sk-test-a-${randomBytes(12).toString('hex')}`;
  const keyB = `sk-test-b-${randomBytes(12).toString('hex')}`;
  const env: Record<string, string> = {
    DATA_DIR: dataDir,
    TEMPORAL_ADDRESS: process.env.TEST_TEMPORAL_ADDRESS!,
    TEMPORAL_TASK_QUEUE: `test-${randomBytes(4).toString('hex')}`,
    VLLM_BASE_URL: sim.url,
    BESH_API_KEYS: `${keyA},${keyB}`,
    WORKFLOW_BUNDLE_PATH: process.env.TEST_WORKFLOW_BUNDLE!,
    HEARTBEAT_TIMEOUT_SECONDS: '5',
    SHUTDOWN_GRACE_SECONDS: '2',
    // One process per worker entry, as the fault tests count on; the worker-processes test asks for more.
    WORKER_PROCESSES: '1',
    ...(opts.pools ? { UPSTREAMS: JSON.stringify({ pools: upstreams }) } : {}),
    ...database.env,
    ...(bucket ? s3Env(bucket.endpoint, bucket.bucket) : {}),
    ...opts.env,
  };
  const config = loadConfig(env);
  const { db, blobs, parts, keys } = await openServices(config);
  await keys.seed(config.seedApiKeys);
  const connection = await Connection.connect({ address: config.temporalAddress });
  const temporal = new Client({ connection, namespace: config.temporalNamespace });
  const app = composeApi(config, { db, blobs, parts, keys, temporal, log: () => undefined });
  const server: Server = createApiServer(app, config).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const baseURL = `http://127.0.0.1:${(server.address() as { port: number }).port}/v1`;

  let worker: BatchWorker | null = null;
  let workerDone: Promise<void> | null = null;
  let nativeConnection: NativeConnection | null = null;
  if (opts.worker !== false) {
    nativeConnection = await NativeConnection.connect({ address: config.temporalAddress });
    worker = await createBatchWorker(config, { db, blobs, parts, connection: nativeConnection });
    workerDone = worker.run();
  }
  const client = (apiKey: string) => new OpenAI({ apiKey, baseURL, maxRetries: 0, timeout: 120_000 });
  return {
    config,
    env,
    db,
    blobs,
    parts,
    keys,
    temporal,
    sim,
    pools,
    baseURL,
    keyA,
    keyB,
    openai: client(keyA),
    openaiB: client(keyB),
    worker,
    workerDone,
    async storedFiles() {
      const keys: string[] = [];
      for await (const { key } of blobs.list('')) keys.push(key);
      const unfinished = bucket
        ? (await listUploads(bucket.client, bucket.bucket, 'files/')).map((u) => u.key)
        : fs.readdirSync(path.join(config.filesDir, '.tmp'));
      return [...keys, ...unfinished];
    },
    async close() {
      if (worker) {
        worker.worker.shutdown();
        await workerDone;
      }
      await nativeConnection?.close();
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      await closed;
      await connection.close();
      await db.destroy();
      await sim.close();
      await Promise.all(Object.values(pools).map((p) => p.close()));
      await database.drop();
      if (blobs instanceof S3BlobStore) blobs.client.destroy();
      await bucket?.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
