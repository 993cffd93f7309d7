// Run by test/integration/blob-store.test.ts in a child process started with --expose-gc, so the memory it measures
// is the put's alone: streams `bytes` of generated data into a store and prints one JSON line with the peak growth of
// live memory (sampled after a full collection) and the digest of what it sent.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { S3Config } from '../../src/config';
import { LocalBlobStore } from '../../src/storage/local-blob-store';
import { createS3Client } from '../../src/storage/open-blob-stores';
import { S3BlobStore } from '../../src/storage/s3-blob-store';

async function main() {
  const [kind, target, key, bytesArg] = process.argv.slice(2);
  const total = Number(bytesArg);
  const store =
    kind === 'local'
      ? new LocalBlobStore(target)
      : new S3BlobStore(
          createS3Client(JSON.parse(target) as S3Config),
          (JSON.parse(target) as S3Config).bucket,
          'files/',
        );
  const gc = global.gc!;
  const hash = createHash('sha256');
  async function* chunks() {
    for (let sent = 0; sent < total;) {
      const chunk = randomBytes(Math.min(64 * 1024, total - sent));
      hash.update(chunk);
      sent += chunk.length;
      yield chunk;
    }
  }
  gc();
  const base = process.memoryUsage();
  const peak = { heap: 0, buffers: 0, rss: 0 };
  const sample = () => {
    gc();
    const m = process.memoryUsage();
    peak.heap = Math.max(peak.heap, m.heapUsed - base.heapUsed);
    peak.buffers = Math.max(peak.buffers, m.arrayBuffers - base.arrayBuffers);
    peak.rss = Math.max(peak.rss, m.rss - base.rss);
  };
  const sampler = setInterval(sample, 50);
  const started = Date.now();
  const { bytes } = await store.put(key, Readable.from(chunks()));
  clearInterval(sampler);
  const seconds = (Date.now() - started) / 1000;
  console.log(JSON.stringify({ bytes, sha256: hash.digest('hex'), seconds, ...peak }));
  if (store instanceof S3BlobStore) store.client.destroy();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
