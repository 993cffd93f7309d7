import assert from 'node:assert/strict';
import { assertEveryLineOnce, batchLines, createBatch, toJsonl, waitForBatch } from '../support/batches';
import { createTestBucket, FaultProxy, s3Env, type Fault, type S3Op } from '../support/s3';
import { startStack, type Stack } from '../support/stack';

/**
 * Batches on an S3 store that sheds requests: whatever the store throttles or drops, during the upload, the
 * chunks' ranged reads of the input, their segment writes, the listings of a resume and finalization, the batch
 * completes with every line exactly once. Runs on moto whatever BESH_TEST_BLOB_STORE says.
 */
describe('An S3 store that throttles and drops requests', function () {
  this.timeout(180_000);
  let s: Stack;
  let proxy: FaultProxy;
  let bucket: Awaited<ReturnType<typeof createTestBucket>>;
  before(async () => {
    bucket = await createTestBucket();
    proxy = await FaultProxy.start(bucket.endpoint);
    // Segments every 50 ms, so a batch writes many of them through the faults.
    s = await startStack({ env: { ...s3Env(proxy.endpoint, bucket.bucket), CHECKPOINT_FLUSH_MS: '50' } });
  });
  after(async () => {
    await s?.close();
    await proxy?.close();
    await bucket?.drop();
  });

  const ops: S3Op[] = [
    'putObject',
    'uploadPart',
    'getObject',
    'listObjects',
    'completeUpload',
    'deleteObject',
  ];
  for (const fault of ['slowdown', 'reset'] as Fault[]) {
    it(`completes a batch with every line once when every 5th request is answered ${fault}`, async () => {
      const input = batchLines(1500);
      proxy.setRule({ ops, every: 5, fault });
      const failedBefore = new Map(proxy.failed);
      try {
        const created = await createBatch(s.openai, toJsonl(input));
        const done = await waitForBatch(s.openai, created.id, { timeoutMs: 150_000 });
        assert.equal(done.status, 'completed', JSON.stringify(done.errors));
        const { err } = await assertEveryLineOnce(s.openai, done, input);
        assert.equal(err.length, 0);
      } finally {
        proxy.setRule(null);
      }
      // The faults really hit the writes and reads the engine depends on.
      const hit = (op: S3Op) => (proxy.failed.get(op) ?? 0) - (failedBefore.get(op) ?? 0);
      for (const op of ['putObject', 'getObject', 'listObjects'] as S3Op[])
        assert.ok(hit(op) > 0, `${op} requests failed: ${hit(op)}`);
    });
  }
});
