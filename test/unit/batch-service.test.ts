import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { INITIAL_STATUS, type BatchStatus } from '../../src/batches/lifecycle';
import { moveBatch } from '../../src/batches/status-store';
import type { CreateBatchParams } from '../../src/batches/create-params';
import { BatchEntity, ChunkProgressEntity, FileEntity } from '../../src/db/entities';
import { Refused } from '../../src/services/errors';
import { batchResultFileId } from '../../src/shared/ids';
import { openServiceFixture, STOP_WAIT_MS, type ServiceFixture } from '../support/service-fixture';

const OWNER = 'tenant_a';
const OTHER = 'tenant_b';

const params = (inputFileId: string): CreateBatchParams => ({
  inputFileId,
  endpoint: '/v1/chat/completions',
  completionWindow: '24h',
  windowSeconds: 86400,
  metadata: { project: 'q3' },
  outputExpiresAfterSeconds: null,
});

/** Rejects with a service refusal of this kind and code. */
const refused = (kind: Refused['kind'], code: string, message?: RegExp) => (err: unknown) => {
  assert.ok(err instanceof Refused, `expected a refusal, got ${String(err)}`);
  assert.equal(err.kind, kind);
  assert.equal(err.code, code);
  if (message) assert.match(err.message, message);
  return true;
};

describe('BatchService', () => {
  let f: ServiceFixture;
  beforeEach(async () => {
    f = await openServiceFixture();
  });
  afterEach(async () => f.close());

  const rowOf = (id: string) => f.db.getRepository(BatchEntity).findOneBy({ id });
  /** Moves a batch along the lifecycle the way its workflow does, one legal step at a time. */
  const walk = async (id: string, ...path: BatchStatus[]) => {
    for (const to of path) assert.equal(await moveBatch(f.db, id, to), 'moved', `to ${to}`);
  };
  const created = async () => f.batches.create(OWNER, params((await f.uploadBatchInput(OWNER)).id));

  describe('create', () => {
    it('inserts the batch in the initial status and starts the engine with its input', async () => {
      const input = await f.uploadBatchInput(OWNER);
      const batch = await f.batches.create(OWNER, params(input.id));

      assert.equal(batch.status, INITIAL_STATUS);
      assert.equal(batch.expires_at, batch.created_at + 86400);
      const row = await rowOf(batch.id);
      assert.ok(row);
      assert.deepEqual(
        [row.owner, row.status, row.inputFileId, row.expiresAt, row.metadata],
        [OWNER, INITIAL_STATUS, input.id, batch.expires_at, { project: 'q3' }],
      );
      assert.deepEqual(f.engine.started, [
        {
          batchId: batch.id,
          owner: OWNER,
          inputFileId: input.id,
          endpoint: '/v1/chat/completions',
          expiresAtMs: batch.expires_at! * 1000,
          priority: 'normal',
        },
      ]);
    });

    it('leaves no row when the engine refuses to start', async () => {
      const input = await f.uploadBatchInput(OWNER);
      f.engine.refuseStart = new Error('engine unavailable');
      await assert.rejects(f.batches.create(OWNER, params(input.id)), /engine unavailable/);
      assert.equal(await f.db.getRepository(BatchEntity).count(), 0);
      assert.deepEqual((await f.batches.list(OWNER, { limit: 10 })).data, []);
    });

    it("refuses another tenant's file and a file that is not a batch input, starting nothing", async () => {
      const input = await f.uploadBatchInput(OWNER);
      await assert.rejects(f.batches.create(OTHER, params(input.id)), refused('not_found', 'not_found'));
      const other = await f.files.upload(OWNER, {
        spoolPath: f.spool('plain text'),
        filename: 'notes.txt',
        purpose: 'user_data',
      });
      await assert.rejects(
        f.batches.create(OWNER, params(other.id)),
        refused('invalid', 'invalid_file_purpose', /purpose 'batch', not 'user_data'/),
      );
      assert.deepEqual(f.engine.started, []);
      assert.equal(await f.db.getRepository(BatchEntity).count(), 0);
    });
  });

  describe('get and list', () => {
    it('counts a running batch live from its chunks, and hides it from other tenants', async () => {
      const batch = await created();
      await walk(batch.id, 'in_progress');
      await moveBatch(f.db, batch.id, 'in_progress', { total: 10 });
      await f.db.getRepository(ChunkProgressEntity).insert([
        { batchId: batch.id, chunkIndex: 0, completed: 3, failed: 1, outputTokens: 7 },
        { batchId: batch.id, chunkIndex: 1, completed: 2, failed: 0, outputTokens: 5 },
      ]);

      const got = await f.batches.get(OWNER, batch.id);
      assert.deepEqual(got.request_counts, { total: 10, completed: 5, failed: 1 });
      assert.equal(got.usage.output_tokens, 12);
      const { data } = await f.batches.list(OWNER, { limit: 10 });
      assert.deepEqual(
        data.map((b) => [b.id, b.request_counts.completed]),
        [[batch.id, 5]],
      );
      await assert.rejects(f.batches.get(OTHER, batch.id), refused('not_found', 'not_found'));
      assert.deepEqual((await f.batches.list(OTHER, { limit: 10 })).data, []);
    });

    it('pages newest first, filters by status and refuses a cursor that is not the caller’s', async () => {
      const first = await created();
      const second = await created();
      await walk(first.id, 'failed');

      const page1 = await f.batches.list(OWNER, { limit: 1 });
      assert.deepEqual([page1.data.map((b) => b.id), page1.hasMore], [[second.id], true]);
      const page2 = await f.batches.list(OWNER, { limit: 1, after: second.id });
      assert.deepEqual([page2.data.map((b) => b.id), page2.hasMore], [[first.id], false]);
      const failed = await f.batches.list(OWNER, { limit: 10, status: 'failed' });
      assert.deepEqual(
        failed.data.map((b) => b.id),
        [first.id],
      );
      await assert.rejects(
        f.batches.list(OTHER, { limit: 1, after: second.id }),
        refused('invalid', 'invalid_cursor'),
      );
    });

    it('counts unfinished batches by status, every unfinished status present', async () => {
      const a = await created();
      await created();
      await walk(a.id, 'in_progress');
      const otherInput = await f.uploadBatchInput(OTHER);
      await f.batches.create(OTHER, params(otherInput.id));

      const mine = await f.batches.unfinishedByStatus(OWNER);
      assert.deepEqual(mine, { validating: 1, in_progress: 1, finalizing: 0, cancelling: 0 });
      assert.equal((await f.batches.unfinishedByStatus()).validating, 2);
    });
  });

  describe('cancel', () => {
    it('asks the engine and answers the batch as the run recorded it', async () => {
      const batch = await created();
      f.engine.onCancel = async (id) => (await moveBatch(f.db, id, 'cancelling')) === 'moved';
      const answer = await f.batches.cancel(OWNER, batch.id);
      assert.equal(answer.status, 'cancelling');
      assert.ok(answer.cancelling_at);
      assert.deepEqual(f.engine.cancelled, [batch.id]);
    });

    it('refuses a finished batch without asking the engine', async () => {
      const batch = await created();
      await walk(batch.id, 'in_progress', 'finalizing', 'completed');
      await assert.rejects(
        f.batches.cancel(OWNER, batch.id),
        refused('conflict', 'batch_not_cancellable', /^Cannot cancel a batch whose status is completed\.$/),
      );
      assert.deepEqual(f.engine.cancelled, []);
    });

    it('refuses when the run finished between the read and the request', async () => {
      const batch = await created();
      f.engine.onCancel = async (id) => {
        await walk(id, 'failed');
        return false;
      };
      await assert.rejects(
        f.batches.cancel(OWNER, batch.id),
        refused('conflict', 'batch_not_cancellable', /status is failed/),
      );
    });
  });

  describe('delete', () => {
    it('cancels a running batch first and answers "still stopping" when its run does not close in time', async () => {
      const batch = await created();
      await walk(batch.id, 'in_progress');
      f.engine.onCancel = async (id) => (await moveBatch(f.db, id, 'cancelling')) === 'moved';
      f.engine.onWait = async () => false;

      await assert.rejects(
        f.batches.delete(OWNER, batch.id),
        refused('retry_later', 'batch_stopping', /still stopping/),
      );
      assert.deepEqual(f.engine.cancelled, [batch.id]);
      assert.deepEqual(f.engine.waited, [{ batchId: batch.id, timeoutMs: STOP_WAIT_MS }]);
      assert.equal((await rowOf(batch.id))?.status, 'cancelling', 'the batch stays until its run has closed');
    });

    it('deletes a running batch once its run has closed', async () => {
      const batch = await created();
      f.engine.onCancel = async (id) => (await moveBatch(f.db, id, 'cancelling')) === 'moved';
      f.engine.onWait = async (id) => (await moveBatch(f.db, id, 'cancelled')) === 'moved';
      await f.batches.delete(OWNER, batch.id);
      assert.deepEqual(f.engine.cancelled, [batch.id]);
      assert.equal(await rowOf(batch.id), null);
    });

    it('removes the result files, chunk progress and row, and keeps the input file', async () => {
      const batch = await created();
      await walk(batch.id, 'in_progress', 'finalizing');
      // What finalization leaves behind: two result files and the chunks' progress.
      const results = (['output', 'error'] as const).map((kind) => batchResultFileId(batch.id, kind));
      for (const id of results) {
        await f.blobs.put(id, Readable.from(['{}\n']));
        await f.db.getRepository(FileEntity).insert({
          id,
          owner: OWNER,
          filename: `${id}.jsonl`,
          purpose: 'batch_output',
          bytes: 3,
          createdAt: batch.created_at,
          expiresAt: null,
        });
      }
      await f.db
        .getRepository(BatchEntity)
        .update({ id: batch.id }, { outputFileId: results[0], errorFileId: results[1] });
      await f.db
        .getRepository(ChunkProgressEntity)
        .insert({ batchId: batch.id, chunkIndex: 0, completed: 2 });
      await walk(batch.id, 'completed');

      await f.batches.delete(OWNER, batch.id);

      assert.deepEqual(f.engine.cancelled, [], 'a finished batch is not cancelled');
      assert.equal(await rowOf(batch.id), null);
      assert.equal(await f.db.getRepository(ChunkProgressEntity).countBy({ batchId: batch.id }), 0);
      for (const id of results) {
        assert.equal(await f.db.getRepository(FileEntity).findOneBy({ id }), null);
        assert.equal(await f.blobs.size(id), null);
      }
      const input = await f.files.get(OWNER, batch.input_file_id);
      assert.equal(await f.blobs.size(input.id), input.bytes);
    });

    it("answers not found for another tenant's batch and deletes nothing", async () => {
      const batch = await created();
      await assert.rejects(f.batches.delete(OTHER, batch.id), refused('not_found', 'not_found'));
      assert.ok(await rowOf(batch.id));
      assert.deepEqual(f.engine.cancelled, []);
    });
  });
});
