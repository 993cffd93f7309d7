import { CreateMultipartUploadCommand, HeadObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { BlobNotFoundError, type BlobStore } from '../../src/storage/blob-store';
import { LocalBlobStore } from '../../src/storage/local-blob-store';
import { createS3Client } from '../../src/storage/open-blob-stores';
import { S3BlobStore } from '../../src/storage/s3-blob-store';
import { createTestBucket, FaultProxy, listUploads, s3Settings, type S3Op } from '../support/s3';

const MiB = 1024 * 1024;

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function keysOf(store: BlobStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const b of store.list(prefix)) keys.push(b.key);
  return keys;
}

/** `total` bytes of random data made on the fly in 64 KiB chunks; the digest is known once the stream ended. */
function generated(total: number, failAt?: number): { stream: Readable; digest: () => string } {
  const hash = createHash('sha256');
  async function* chunks() {
    for (let sent = 0; sent < total;) {
      if (failAt !== undefined && sent >= failAt) throw new Error('source broke off');
      const chunk = randomBytes(Math.min(64 * 1024, total - sent));
      hash.update(chunk);
      sent += chunk.length;
      yield chunk;
    }
  }
  return { stream: Readable.from(chunks()), digest: () => hash.digest('hex') };
}

async function sha256(stream: Readable): Promise<{ hex: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const c of stream) {
    hash.update(c as Buffer);
    bytes += (c as Buffer).length;
  }
  return { hex: hash.digest('hex'), bytes };
}

/** The put of test/support/blob-put-probe.ts in a process of its own (with --expose-gc): what it measured. */
async function putInChildProcess(kind: string, target: string, key: string, bytes: number) {
  const probe = path.join(__dirname, '..', 'support', 'blob-put-probe.ts');
  const child = spawn(
    process.execPath,
    ['--expose-gc', '-r', 'ts-node/register/transpile-only', probe, kind, target, key, String(bytes)],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise((resolve) => child.once('exit', resolve));
  assert.equal(code, 0, `the probe failed: ${err}`);
  return JSON.parse(out.trim().split('\n').pop()!) as {
    bytes: number;
    sha256: string;
    seconds: number;
    heap: number;
    buffers: number;
    rss: number;
  };
}

interface Subject {
  store: BlobStore;
  /** Another store on the same bucket or folder layout (S3: the `parts/` prefix) for isolation checks. */
  neighbour: BlobStore;
  /** Multipart uploads left unfinished under the store (S3), or temp files (local). */
  leftovers(): Promise<number>;
  close(): Promise<void>;
}

async function localSubject(): Promise<Subject> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'besh-blobs-'));
  const store = new LocalBlobStore(path.join(dir, 'files'));
  return {
    store,
    neighbour: new LocalBlobStore(path.join(dir, 'parts')),
    leftovers: async () => fs.readdirSync(path.join(dir, 'files', '.tmp')).length,
    close: async () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

let proxy: FaultProxy | null = null;
let s3Bucket: Awaited<ReturnType<typeof createTestBucket>> | null = null;

/** The S3 store talks to moto through the fault proxy (no faults unless a test sets a rule). */
async function s3Subject(): Promise<Subject> {
  s3Bucket = await createTestBucket();
  proxy = await FaultProxy.start(s3Bucket.endpoint);
  const client = createS3Client(s3Settings(proxy.endpoint, s3Bucket.bucket));
  const bucket = s3Bucket;
  return {
    store: new S3BlobStore(client, bucket.bucket, 'files/'),
    neighbour: new S3BlobStore(client, bucket.bucket, 'parts/'),
    leftovers: async () => (await listUploads(bucket.client, bucket.bucket, 'files/')).length,
    async close() {
      client.destroy();
      await proxy?.close();
      await bucket.drop();
    },
  };
}

for (const kind of ['local', 's3'] as const) {
  describe(`Blob store contract: ${kind}`, function () {
    this.timeout(120_000);
    let subject: Subject;
    let store: BlobStore;

    before(async () => {
      subject = kind === 'local' ? await localSubject() : await s3Subject();
      store = subject.store;
    });
    after(async () => subject?.close());
    afterEach(() => proxy?.setRule(null));

    it('stores, reads back, sizes and overwrites a blob', async () => {
      const data = Buffer.from('{"a":1}\n{"b":2}\n');
      assert.deepEqual(await store.put('file-roundtrip', Readable.from([data])), { bytes: data.length });
      assert.deepEqual(await readAll(await store.get('file-roundtrip')), data);
      assert.equal(await store.size('file-roundtrip'), data.length);
      await store.put('file-roundtrip', Readable.from([Buffer.from('new')]));
      assert.equal((await readAll(await store.get('file-roundtrip'))).toString(), 'new');
      assert.equal(await store.size('file-roundtrip'), 3);
    });

    it('reads byte ranges [start, end), clipped at the end, and an empty range as nothing', async () => {
      const data = Buffer.from('0123456789abcdefghij');
      await store.put('file-ranges', Readable.from([data]));
      const range = async (start: number, end: number) =>
        (await readAll(await store.get('file-ranges', { start, end }))).toString();
      assert.equal(await range(0, 5), '01234');
      assert.equal(await range(5, 12), '56789ab');
      assert.equal(await range(19, 20), 'j');
      assert.equal(await range(15, 100), 'fghij', 'a range past the end is clipped');
      assert.equal(await range(7, 7), '', 'an empty range');
      assert.equal(await range(20, 30), '', 'a range that starts at the end');
      assert.equal(await range(25, 30), '', 'a range that starts past the end');
    });

    it('stores an empty blob and reads it whole and by range', async () => {
      assert.deepEqual(await store.put('file-empty', Readable.from([])), { bytes: 0 });
      assert.equal(await store.size('file-empty'), 0);
      assert.equal((await readAll(await store.get('file-empty'))).length, 0);
      assert.equal((await readAll(await store.get('file-empty', { start: 0, end: 10 }))).length, 0);
    });

    it('reads a blob larger than one read window byte for byte, whole and by range', async () => {
      const data = randomBytes(3 * MiB + 12345);
      await store.put('file-windows', Readable.from([data]));
      assert.ok((await readAll(await store.get('file-windows'))).equals(data));
      const [start, end] = [MiB - 7, 2 * MiB + 777_777];
      assert.ok(
        (await readAll(await store.get('file-windows', { start, end }))).equals(data.subarray(start, end)),
      );
    });

    it('rejects a missing blob before any stream exists; size is null; delete is idempotent', async () => {
      await assert.rejects(store.get('file-missing'), BlobNotFoundError);
      await assert.rejects(store.get('file-missing', { start: 0, end: 10 }), BlobNotFoundError);
      await assert.rejects(store.get('file-missing', { start: 3, end: 3 }), BlobNotFoundError);
      assert.equal(await store.size('file-missing'), null);
      await store.delete('file-missing');
      await store.put('file-gone', Readable.from([Buffer.from('x')]));
      await store.delete('file-gone');
      await store.delete('file-gone');
      assert.equal(await store.size('file-gone'), null);
      await assert.rejects(store.get('file-gone'), BlobNotFoundError);
    });

    it('refuses unsafe keys', async () => {
      for (const key of ['../x', 'a/b', '', '.hidden', 'a..b']) {
        await assert.rejects(store.put(key, Readable.from([])), /unsafe blob key/);
        await assert.rejects(store.get(key), /unsafe blob key/);
      }
    });

    it('lists blobs by prefix in ascending key order, across pages, without other stores’ keys', async () => {
      const keys = Array.from(
        { length: 230 },
        (_, i) => `list_${String(i).padStart(4, '0')}.${i % 2 ? 'out' : 'err'}`,
      );
      const shuffled = [...keys].sort(() => Math.random() - 0.5);
      const before = Date.now() - 5000;
      for (let i = 0; i < shuffled.length; i += 20) {
        await Promise.all(
          shuffled.slice(i, i + 20).map((k) => store.put(k, Readable.from([Buffer.from(k)]))),
        );
      }
      await subject.neighbour.put('list_neighbour', Readable.from([Buffer.from('x')]));
      const listed: { key: string; bytes: number; modifiedMs: number }[] = [];
      for await (const b of store.list('list_')) listed.push(b);
      assert.deepEqual(
        listed.map((b) => b.key),
        keys,
      );
      assert.ok(listed.every((b) => b.bytes === b.key.length));
      assert.ok(listed.every((b) => b.modifiedMs >= before && b.modifiedMs <= Date.now() + 5000));
      assert.deepEqual(await keysOf(store, 'list_0012'), ['list_0012.err']);
      assert.deepEqual(await keysOf(store, 'list_01'), keys.slice(100, 200));
      assert.deepEqual(await keysOf(store, 'nothing-here'), []);
      assert.deepEqual(await keysOf(subject.neighbour, 'list_'), ['list_neighbour']);

      // Deleting by prefix removes exactly the listed keys, across pages, and leaves the neighbour's.
      assert.equal(await store.deletePrefix('list_01'), 100);
      assert.deepEqual(await keysOf(store, 'list_'), [...keys.slice(0, 100), ...keys.slice(200)]);
      assert.equal(await store.deletePrefix('list_'), 130);
      assert.equal(await store.deletePrefix('list_'), 0);
      assert.deepEqual(await keysOf(subject.neighbour, 'list_'), ['list_neighbour']);
    });

    it('streams a 128 MiB upload in bounded memory (multipart on S3) and reads it back intact', async () => {
      const total = 128 * MiB;
      const partsBefore = proxy?.forwarded.get('uploadPart') ?? 0;
      const target =
        kind === 'local'
          ? (store as LocalBlobStore).root
          : JSON.stringify(s3Settings(proxy!.endpoint, s3Bucket!.bucket));
      const probe = await putInChildProcess(kind, target, 'file-large', total);
      console.log(
        `      [${kind}] 128 MiB put in ${probe.seconds.toFixed(1)} s; peak growth of live memory: heap ` +
          `${(probe.heap / MiB).toFixed(1)} MiB, buffers ${(probe.buffers / MiB).toFixed(1)} MiB, rss ${(probe.rss / MiB).toFixed(1)} MiB`,
      );
      assert.equal(probe.bytes, total);
      assert.equal(await store.size('file-large'), total);
      // Well under the blob's size: S3 holds queueSize × partSize (4 × 5 MiB) in flight, the part being assembled
      // and the client's copies, which peaked between 25 and 57 MiB in runs with 64 and 128 MiB blobs alike.
      const growth = probe.heap + probe.buffers;
      assert.ok(growth < 0.6 * total, `live memory grew by ${(growth / MiB).toFixed(1)} MiB`);
      if (proxy && s3Bucket) {
        assert.ok((proxy.forwarded.get('uploadPart') ?? 0) - partsBefore >= 26, 'uploaded in 26 parts');
        const head = await s3Bucket.client.send(
          new HeadObjectCommand({ Bucket: s3Bucket.bucket, Key: 'files/file-large' }),
        );
        assert.match(head.ETag ?? '', /-26"?$/, 'a multipart object of 26 parts');
      }
      assert.deepEqual(await sha256(await store.get('file-large')), { hex: probe.sha256, bytes: total });
      await store.delete('file-large');
    });

    it('leaves no blob and no unfinished upload when the source fails midway', async () => {
      const source = generated(30 * MiB, 17 * MiB);
      await assert.rejects(store.put('file-broken', source.stream), /source broke off/);
      assert.equal(await store.size('file-broken'), null);
      assert.equal(await subject.leftovers(), 0);
      assert.deepEqual(await keysOf(store, 'file-broken'), []);
    });

    it('sweeps writes left unfinished longer than the cutoff, and only those', async () => {
      if (kind === 'local') {
        const tmp = path.join((store as LocalBlobStore).root, '.tmp');
        fs.writeFileSync(path.join(tmp, 'file-old.abc'), 'x');
        fs.writeFileSync(path.join(tmp, 'file-new.abc'), 'x');
        const old = new Date(Date.now() - 2 * 3600 * 1000);
        fs.utimesSync(path.join(tmp, 'file-old.abc'), old, old);
        assert.equal(await store.sweepIncomplete(3600 * 1000), 1);
        assert.deepEqual(fs.readdirSync(tmp), ['file-new.abc']);
        fs.rmSync(path.join(tmp, 'file-new.abc'));
        return;
      }
      // A multipart upload abandoned by a crashed writer, and one in the neighbour store's prefix.
      const { client, bucket } = s3Bucket!;
      const start = async (Key: string) => {
        const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key }));
        await client.send(
          new UploadPartCommand({ Bucket: bucket, Key, UploadId, PartNumber: 1, Body: randomBytes(1024) }),
        );
      };
      await start('files/file-abandoned');
      await start('parts/segment-abandoned');
      // The cutoff is tried on both sides of the time the server says the upload began (moto says 2010-11-10 for
      // every upload).
      const uploads = await listUploads(client, bucket, 'files/');
      const age = Date.now() - uploads[0].initiatedMs;
      assert.equal(await store.sweepIncomplete(age + 60_000), 0, 'too recent for the cutoff');
      assert.equal((await listUploads(client, bucket)).length, 2);
      assert.equal(await store.sweepIncomplete(Math.max(0, age - 60_000)), 1);
      assert.deepEqual(
        (await listUploads(client, bucket)).map((u) => u.key),
        ['parts/segment-abandoned'],
        "the other store's upload is left alone",
      );
      assert.equal(await store.size('file-abandoned'), null);
    });

    if (kind !== 's3') return;

    describe('on a store that fails and throttles', () => {
      const faults: { name: string; ops: S3Op[]; fault: 'slowdown' | 'internal' | 'reset' }[] = [
        {
          name: '503 SlowDown on puts and part uploads',
          ops: ['putObject', 'uploadPart', 'completeUpload'],
          fault: 'slowdown',
        },
        { name: '503 SlowDown on ranged gets', ops: ['getObject', 'headObject'], fault: 'slowdown' },
        { name: '503 SlowDown on lists', ops: ['listObjects'], fault: 'slowdown' },
        { name: '500 InternalError on every kind of request', ops: allOps(), fault: 'internal' },
        { name: 'connections reset on every kind of request', ops: allOps(), fault: 'reset' },
      ];
      for (const f of faults) {
        it(`${f.name}: every operation succeeds with byte-identical content`, async () => {
          const tag = f.fault + '_' + f.ops[0];
          const small = Array.from({ length: 12 }, (_, i) => ({
            key: `${tag}_${i}`,
            data: randomBytes(1000 + i),
          }));
          const big = randomBytes(12 * MiB + 4321); // three parts, twelve read windows
          proxy!.setRule({ ops: f.ops, every: 3, fault: f.fault });

          for (const b of small)
            assert.deepEqual(await store.put(b.key, Readable.from([b.data])), { bytes: b.data.length });
          const halves = [big.subarray(0, 6 * MiB), big.subarray(6 * MiB)];
          assert.deepEqual(await store.put(`${tag}_big`, Readable.from(halves)), { bytes: big.length });
          for (const b of small) assert.ok((await readAll(await store.get(b.key))).equals(b.data), b.key);
          assert.ok((await readAll(await store.get(`${tag}_big`))).equals(big), 'big blob intact');
          const [start, end] = [3 * MiB + 11, 9 * MiB + 5];
          assert.ok(
            (await readAll(await store.get(`${tag}_big`, { start, end }))).equals(big.subarray(start, end)),
          );
          assert.equal(await store.size(`${tag}_big`), big.length);
          const expected = [...small.map((b) => b.key), `${tag}_big`].sort();
          for (let i = 0; i < 4; i++) assert.deepEqual(await keysOf(store, `${tag}_`), expected);

          assert.ok(proxy!.totalFailed() > 0, 'faults were injected');
          proxy!.setRule(null);
          assert.equal(await subject.leftovers(), 0, 'no unfinished upload');
          await store.delete(`${tag}_big`);
          assert.equal(await store.deletePrefix(`${tag}_`), small.length);
          assert.deepEqual(await keysOf(store, `${tag}_`), []);
        });
      }

      it('counts the injected faults per operation', () => {
        console.log(`      injected: ${JSON.stringify(Object.fromEntries(proxy!.failed))}`);
        for (const op of ['putObject', 'uploadPart', 'getObject', 'listObjects'] as const) {
          assert.ok((proxy!.failed.get(op) ?? 0) > 0, `${op} was failed at least once`);
        }
      });
    });
  });
}

function allOps(): S3Op[] {
  return [
    'putObject',
    'uploadPart',
    'createUpload',
    'completeUpload',
    'getObject',
    'headObject',
    'deleteObject',
    'listObjects',
  ];
}
