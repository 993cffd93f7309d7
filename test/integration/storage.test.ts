import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import type { CleanupReport } from '../../src/contract/batch-workflow';
import { FileEntity } from '../../src/db/entities';
import { cleanupScheduleId, ensureCleanupSchedule } from '../../temporal/schedules';
import { batchLines, createBatch, toJsonl, uploadBatchFile, waitForBatch } from '../support/batches';
import { testBlobStoreKind } from '../support/s3';
import { startStack, type Stack } from '../support/stack';

describe('Storage management: expiry, cleanup schedule, files in use, usage per tenant', function () {
  this.timeout(120_000);
  let s: Stack;
  before(async () => {
    s = await startStack({ simulator: { capacity: 4, baseLatencyMs: 30 } });
  });
  after(async () => s?.close());

  const expire = (id: string) =>
    s.db.getRepository(FileEntity).update({ id }, { expiresAt: Math.floor(Date.now() / 1000) - 1 });
  const runCleanup = () =>
    s.temporal.workflow.execute('cleanupWorkflow', {
      taskQueue: s.config.taskQueue,
      workflowId: `cleanup-test-${Date.now()}`,
    }) as Promise<CleanupReport>;
  const usage = async (key: string) => {
    const res = await fetch(`${s.baseURL}/storage`, { headers: { authorization: `Bearer ${key}` } });
    return (await res.json()) as {
      files: number;
      bytes: number;
      by_purpose: Record<string, { files: number; bytes: number }>;
    };
  };

  it('hides an expired file at once, and the cleanup workflow deletes it and its blob, reporting what it freed @store', async () => {
    const file = await uploadBatchFile(s.openai, toJsonl(batchLines(10)));
    const before = await usage(s.keyA);
    await expire(file.id);
    assert.ok(
      (await s.openai.files.retrieve(file.id).catch((e: unknown) => e)) instanceof OpenAI.NotFoundError,
    );
    assert.ok(!(await s.openai.files.list()).data.some((f) => f.id === file.id));
    assert.equal((await usage(s.keyA)).bytes, before.bytes - file.bytes);

    const report = await runCleanup();
    assert.ok(report.expiredFiles >= 1);
    assert.ok(report.freedBytes >= file.bytes);
    assert.equal(await s.db.getRepository(FileEntity).countBy({ id: file.id }), 0);
    assert.equal(await s.blobs.size(file.id), null);
  });

  it('keeps the input of a running batch even when it expires, and refuses to delete it @store', async () => {
    const created = await createBatch(s.openai, toJsonl(batchLines(200)));
    await waitForBatch(s.openai, created.id, { until: (b) => b.status === 'in_progress' });
    const del = await s.openai.files.delete(created.input_file_id).catch((e: unknown) => e);
    assert.ok(del instanceof OpenAI.BadRequestError);
    assert.match(del.message, /input of a batch that is still running/);
    await expire(created.input_file_id);
    await runCleanup();
    assert.equal(await s.db.getRepository(FileEntity).countBy({ id: created.input_file_id }), 1);
    const done = await waitForBatch(s.openai, created.id);
    assert.equal(done.status, 'completed');
  });

  it('sweeps the chunk segments of finished or unknown batches once they are stale, and leaves fresh ones', async function () {
    // A test cannot backdate an object in S3; the sweep reads both stores' listings alike (list() gives each key's
    // time on both, which the blob store contract tests check).
    if (testBlobStoreKind === 's3') this.skip();
    const parts = path.join(s.config.dataDir, 'parts');
    const stale = 'batch_gone0000000000000000000.000000.00000000.out.a0a0a0';
    const fresh = 'batch_fresh000000000000000000.000000.00000000.out.a0a0a0';
    for (const key of [stale, fresh]) fs.writeFileSync(path.join(parts, key), '{}\n');
    const old = new Date(Date.now() - 7 * 3600 * 1000);
    fs.utimesSync(path.join(parts, stale), old, old);
    const report = await runCleanup();
    assert.ok(report.orphanedPartDirs >= 1);
    assert.ok(!fs.existsSync(path.join(parts, stale)));
    assert.ok(fs.existsSync(path.join(parts, fresh)));
  });

  it('gives batch results the expiry asked for with output_expires_after', async () => {
    const file = await uploadBatchFile(s.openai, toJsonl(batchLines(3)));
    const created = await s.openai.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      output_expires_after: { anchor: 'created_at', seconds: 7200 },
    });
    const done = await waitForBatch(s.openai, created.id);
    const out = await s.openai.files.retrieve(done.output_file_id!);
    assert.equal(out.expires_at, out.created_at + 7200);
  });

  it('shows storage in use per tenant', async () => {
    const a = await usage(s.keyA);
    const b = await usage(s.keyB);
    assert.ok(a.files > 0 && a.bytes > 0);
    assert.ok(a.by_purpose.batch.bytes > 0 && a.by_purpose.batch_output.files > 0);
    assert.deepEqual(b, { object: 'storage_usage', files: 0, bytes: 0, by_purpose: {} });
  });

  it('registers the cleanup schedule once, however many workers start', async () => {
    await ensureCleanupSchedule(s.temporal, s.config);
    await ensureCleanupSchedule(s.temporal, s.config);
    const handle = s.temporal.schedule.getHandle(cleanupScheduleId(s.config.taskQueue));
    const desc = await handle.describe();
    assert.equal(desc.action.type, 'startWorkflow');
    assert.equal((desc.action as { workflowType: string }).workflowType, 'cleanupWorkflow');
    assert.deepEqual(
      desc.spec.intervals?.map((i) => i.every),
      [60 * 60 * 1000],
    );
    await handle.delete();
  });
});
