import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import { moveBatch } from '../../src/batches/status-store';
import { BATCH_FILE_DEFAULT_TTL_SECONDS } from '../../src/files/file-object';
import { UploadError } from '../../src/files/upload-error';
import { FileEntity } from '../../src/db/entities';
import { Refused } from '../../src/services/errors';
import { openServiceFixture, type ServiceFixture } from '../support/service-fixture';

const OWNER = 'tenant_a';
const OTHER = 'tenant_b';

describe('FileService', () => {
  let f: ServiceFixture;
  beforeEach(async () => {
    f = await openServiceFixture();
  });
  afterEach(async () => f.close());

  /** Every blob in the store, finished or half-written. */
  const storedBlobs = () => {
    const root = f.blobs.root;
    const done = fs.readdirSync(root).filter((n) => n !== '.tmp');
    return [...done, ...fs.readdirSync(path.join(root, '.tmp'))];
  };

  it('stores an upload and gives it back: object, list, content, usage', async () => {
    const content = '{"custom_id":"a"}\n{"custom_id":"b"}\n';
    const file = await f.files.upload(OWNER, {
      spoolPath: f.spool(content),
      filename: 'in.jsonl',
      purpose: 'batch',
    });
    assert.equal(file.bytes, Buffer.byteLength(content));
    assert.equal(file.expires_at, file.created_at + BATCH_FILE_DEFAULT_TTL_SECONDS);

    assert.deepEqual(await f.files.get(OWNER, file.id), file);
    assert.deepEqual((await f.files.list(OWNER, { limit: 10, order: 'desc' })).data, [file]);
    const { file: meta, body } = await f.files.content(OWNER, file.id);
    assert.deepEqual([meta, await text(body)], [file, content]);
    assert.deepEqual(await f.files.storageUsage(OWNER), {
      files: 1,
      bytes: file.bytes,
      by_purpose: { batch: { files: 1, bytes: file.bytes } },
    });
    await assert.rejects(f.files.get(OTHER, file.id), (err: unknown) => {
      assert.ok(err instanceof Refused);
      return err.kind === 'not_found' && err.message === `No such File object: ${file.id}`;
    });
  });

  it('keeps files of other purposes without expiry unless asked', async () => {
    const kept = await f.files.upload(OWNER, {
      spoolPath: f.spool('x'),
      filename: 'a.bin',
      purpose: 'user_data',
    });
    const timed = await f.files.upload(OWNER, {
      spoolPath: f.spool('y'),
      filename: 'b.bin',
      purpose: 'user_data',
      expiresAfterSeconds: 3600,
    });
    assert.equal(kept.expires_at, null);
    assert.equal(timed.expires_at, timed.created_at + 3600);
  });

  it('leaves no blob when the row cannot be written', async () => {
    await f.db.query(
      `CREATE TRIGGER refuse_files BEFORE INSERT ON files BEGIN SELECT RAISE(ABORT, 'disk full'); END`,
    );
    await assert.rejects(
      f.files.upload(OWNER, { spoolPath: f.spool('{"a":1}\n'), filename: 'in.jsonl', purpose: 'batch' }),
      /disk full/,
    );
    assert.deepEqual(storedBlobs(), []);
    assert.equal(await f.db.getRepository(FileEntity).count(), 0);
  });

  it('refuses a JSONL upload that is not JSON objects, storing nothing', async () => {
    await assert.rejects(
      f.files.upload(OWNER, {
        spoolPath: f.spool('{"a":1}\nnot json\n'),
        filename: 'in.jsonl',
        purpose: 'batch',
      }),
      (err: unknown) => err instanceof UploadError && err.status === 400,
    );
    assert.deepEqual(storedBlobs(), []);
    assert.equal(await f.db.getRepository(FileEntity).count(), 0);
  });

  it('refuses to delete the input of an unfinished batch, and deletes it once the batch has finished', async () => {
    const input = await f.uploadBatchInput(OWNER);
    const batch = await f.batches.create(OWNER, {
      inputFileId: input.id,
      endpoint: '/v1/chat/completions',
      completionWindow: '24h',
      windowSeconds: 86400,
      metadata: null,
      outputExpiresAfterSeconds: null,
    });

    await assert.rejects(f.files.delete(OWNER, input.id), (err: unknown) => {
      assert.ok(err instanceof Refused);
      assert.deepEqual([err.kind, err.code, err.param], ['conflict', 'file_in_use', 'file_id']);
      return true;
    });
    assert.equal(await f.blobs.size(input.id), input.bytes, 'the content stays');

    assert.equal(await moveBatch(f.db, batch.id, 'failed'), 'moved');
    await f.files.delete(OWNER, input.id);
    assert.equal(await f.db.getRepository(FileEntity).findOneBy({ id: input.id }), null);
    assert.equal(await f.blobs.size(input.id), null);
  });

  it("refuses an `after` cursor that is not one of the caller's files", async () => {
    const file = await f.uploadBatchInput(OWNER);
    const page = await f.files.list(OWNER, { limit: 10, order: 'asc', after: file.id });
    assert.deepEqual(page, { data: [], hasMore: false });
    await assert.rejects(f.files.list(OTHER, { limit: 10, order: 'asc', after: file.id }), (err: unknown) => {
      assert.ok(err instanceof Refused);
      return err.code === 'invalid_cursor' && err.param === 'after';
    });
  });
});
