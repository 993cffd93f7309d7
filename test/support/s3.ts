// A real S3 protocol server for the tests: moto's server mode (installed by `make tools` under .tools/moto), started
// once per mocha run on first use, buckets per test file or stack, and a proxy in front of it that fails requests.
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { S3Config } from '../../src/config';
import { projectRoot } from '../../src/paths';
import { createS3Client } from '../../src/storage/open-blob-stores';
import { freePort } from './ports';

/** Which blob store the stacks use: BESH_TEST_BLOB_STORE=local|s3 (default local). */
export const testBlobStoreKind = (process.env.BESH_TEST_BLOB_STORE ?? 'local') as 'local' | 's3';

const MOTO_SERVER = path.join(projectRoot, '.tools', 'moto', 'bin', 'moto_server');

interface Moto {
  endpoint: string;
  child: ChildProcess;
}

let moto: Promise<Moto> | undefined;

/** The run's moto server (started on first call); its endpoint URL. */
export async function motoEndpoint(): Promise<string> {
  moto ??= startMoto();
  return (await moto).endpoint;
}

async function startMoto(): Promise<Moto> {
  if (!fs.existsSync(MOTO_SERVER)) {
    throw new Error(
      `${MOTO_SERVER} is missing: run \`make tools\` (it installs moto[server] for the S3 tests)`,
    );
  }
  const outDir = path.join(projectRoot, 'test-output');
  fs.mkdirSync(outDir, { recursive: true });
  const log = fs.openSync(path.join(outDir, 'moto.log'), 'a');
  const port = await freePort();
  const child = spawn(MOTO_SERVER, ['-H', '127.0.0.1', '-p', String(port)], {
    // Small list pages, so every listing in the tests goes through pagination.
    env: { ...process.env, MOTO_S3_DEFAULT_MAX_KEYS: '100', S3_IGNORE_SUBDOMAIN_BUCKETNAME: 'true' },
    stdio: ['ignore', log, log],
  });
  fs.closeSync(log);
  // Never outlive the test run, even when it ends without teardown.
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  child.once('exit', () => process.off('exit', kill));
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`moto_server exited (${child.exitCode}); see test-output/moto.log`);
    const up = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (up) return { endpoint, child };
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('moto_server did not answer within 30 s; see test-output/moto.log');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Stops the run's moto server if one was started (global teardown). */
export async function stopMoto(): Promise<void> {
  if (!moto) return;
  const { child } = await moto.catch(() => ({ child: null }));
  moto = undefined;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(timer);
}

/** S3 settings for `endpoint` (moto or a proxy in front of it) with dummy credentials. */
export function s3Settings(endpoint: string, bucket: string, prefix = ''): S3Config {
  return {
    endpoint,
    region: 'us-east-1',
    bucket,
    prefix,
    forcePathStyle: true,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  };
}

/** The same settings as environment variables, for loadConfig and the processes a test starts. */
export function s3Env(endpoint: string, bucket: string): Record<string, string> {
  return {
    BLOB_STORE: 's3',
    S3_ENDPOINT: endpoint,
    S3_REGION: 'us-east-1',
    S3_BUCKET: bucket,
    S3_FORCE_PATH_STYLE: 'true',
    S3_ACCESS_KEY_ID: 'testing',
    S3_SECRET_ACCESS_KEY: 'testing',
  };
}

/** A fresh bucket on the run's moto server; drop() empties and removes it. */
export async function createTestBucket(): Promise<{
  endpoint: string;
  bucket: string;
  client: S3Client;
  drop(): Promise<void>;
}> {
  const endpoint = await motoEndpoint();
  const bucket = `besh-test-${randomBytes(6).toString('hex')}`;
  const client = createS3Client(s3Settings(endpoint, bucket));
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return {
    endpoint,
    bucket,
    client,
    async drop() {
      await emptyBucket(client, bucket);
      await client.send(new DeleteBucketCommand({ Bucket: bucket }));
      client.destroy();
    },
  };
}

/** Removes every object and unfinished multipart upload (moto keeps them all in memory). */
export async function emptyBucket(client: S3Client, bucket: string): Promise<void> {
  for (;;) {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
    if (!keys.length) break;
    await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
  }
  for (const u of await listUploads(client, bucket)) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.key, UploadId: u.uploadId }));
  }
}

/** The unfinished multipart uploads in `bucket` (under `prefix`). */
export async function listUploads(
  client: S3Client,
  bucket: string,
  prefix?: string,
): Promise<{ key: string; uploadId: string; initiatedMs: number }[]> {
  const page = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  return (page.Uploads ?? []).map((u) => ({
    key: u.Key!,
    uploadId: u.UploadId!,
    initiatedMs: u.Initiated?.getTime() ?? 0,
  }));
}

/** The S3 operation an HTTP request to a path-style endpoint is. */
export type S3Op =
  | 'putObject'
  | 'uploadPart'
  | 'createUpload'
  | 'completeUpload'
  | 'abortUpload'
  | 'getObject'
  | 'headObject'
  | 'deleteObject'
  | 'listObjects'
  | 'listUploads'
  | 'other';

export function s3Op(method: string, url: string): S3Op {
  const u = new URL(url, 'http://x');
  const q = u.searchParams;
  const isObject = u.pathname.split('/').filter(Boolean).length >= 2;
  if (method === 'PUT' && q.has('uploadId') && q.has('partNumber')) return 'uploadPart';
  if (method === 'PUT' && isObject) return 'putObject';
  if (method === 'POST' && q.has('uploads')) return 'createUpload';
  if (method === 'POST' && q.has('uploadId')) return 'completeUpload';
  if (method === 'DELETE' && q.has('uploadId')) return 'abortUpload';
  if (method === 'DELETE' && isObject) return 'deleteObject';
  if (method === 'GET' && q.has('uploads')) return 'listUploads';
  if (method === 'GET' && !isObject) return 'listObjects';
  if (method === 'GET') return 'getObject';
  if (method === 'HEAD' && isObject) return 'headObject';
  return 'other';
}

/**
 * A fault: `slowdown` answers 503 SlowDown (S3's throttling), `internal` 500 InternalError, `reset` closes the
 * connection without an answer. The request never reaches the server, as when S3 sheds load.
 */
export type Fault = 'slowdown' | 'internal' | 'reset';

export interface FaultRule {
  /** The operations the rule counts. */
  ops: S3Op[];
  /** Every Nth counted request fails (N ≥ 2, so a retry of a failed request is not failed again in a row). */
  every: number;
  fault: Fault;
}

/**
 * An HTTP proxy in front of an S3 server that fails requests by rule; counts what it forwarded and failed, and the
 * body bytes each way (the bench's S3 row reads those).
 */
export class FaultProxy {
  private rule: FaultRule | null = null;
  private seen = 0;
  readonly forwarded = new Map<S3Op, number>();
  readonly failed = new Map<S3Op, number>();
  /** Request body bytes forwarded to the server. */
  bytesUp = 0;
  /** Response body bytes forwarded from the server. */
  bytesDown = 0;

  private readonly server: http.Server;
  private readonly agent = new http.Agent({ keepAlive: true });
  endpoint = '';

  private constructor(private readonly upstream: URL) {
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  static async start(target: string): Promise<FaultProxy> {
    const proxy = new FaultProxy(new URL(target));
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    proxy.endpoint = `http://127.0.0.1:${(proxy.server.address() as AddressInfo).port}`;
    return proxy;
  }

  /** Sets the rule (null: forward everything) and restarts its count. */
  setRule(rule: FaultRule | null): void {
    if (rule && rule.every < 2) throw new Error('every must be at least 2');
    this.rule = rule;
    this.seen = 0;
  }

  totalFailed(): number {
    return [...this.failed.values()].reduce((a, b) => a + b, 0);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse) {
    const { upstream, agent } = this;
    const op = s3Op(req.method ?? 'GET', req.url ?? '/');
    const rule = this.rule;
    if (rule?.ops.includes(op) && ++this.seen % rule.every === 0) {
      this.failed.set(op, (this.failed.get(op) ?? 0) + 1);
      // Read the whole request first, as a server that received it and then shed it.
      req.resume();
      req.once('end', () => {
        if (rule.fault === 'reset') {
          req.socket.resetAndDestroy();
          return;
        }
        const [status, code] = rule.fault === 'slowdown' ? [503, 'SlowDown'] : [500, 'InternalError'];
        const body =
          `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code>` +
          `<Message>injected by the test proxy</Message><RequestId>fault</RequestId></Error>`;
        res.writeHead(status, {
          'content-type': 'application/xml',
          'content-length': Buffer.byteLength(body),
        });
        res.end(req.method === 'HEAD' ? undefined : body);
      });
      return;
    }
    this.forwarded.set(op, (this.forwarded.get(op) ?? 0) + 1);
    const headers = { ...req.headers };
    delete headers.expect; // this proxy already answered 100-continue
    const out = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.on('data', (d: Buffer) => (this.bytesDown += d.length));
        answer.pipe(res);
      },
    );
    out.on('error', () => req.socket.destroy());
    req.on('data', (d: Buffer) => (this.bytesUp += d.length));
    req.pipe(out);
  }

  async close(): Promise<void> {
    const closed = new Promise((resolve) => this.server.close(resolve));
    this.server.closeAllConnections();
    await closed;
    this.agent.destroy();
  }
}
