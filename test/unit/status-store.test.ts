import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DataSource } from 'typeorm';
import { INITIAL_STATUS, type BatchStatus } from '../../src/batches/lifecycle';
import { admitBatch, moveBatch } from '../../src/batches/status-store';
import { openDatabase } from '../../src/db/data-source';
import { BatchEntity, type BatchRow } from '../../src/db/entities';

describe('batch status store (SQLite)', () => {
  let dir: string;
  let db: DataSource;
  let n = 0;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'besh-status-'));
    db = await openDatabase({ databaseUrl: undefined, sqlitePath: path.join(dir, 'db.sqlite') });
  });
  after(async () => {
    await db.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function insertBatch(over: Partial<BatchRow> = {}): Promise<string> {
    const id = `batch_t${String(++n).padStart(4, '0')}`;
    await db.getRepository(BatchEntity).insert({
      id,
      owner: 'tenant',
      endpoint: '/v1/chat/completions',
      inputFileId: 'file-x',
      completionWindow: '24h',
      status: INITIAL_STATUS,
      createdAt: 1000 + n,
      total: 10,
      ...over,
    });
    return id;
  }
  const row = (id: string) => db.getRepository(BatchEntity).findOneByOrFail({ id });

  it('moves along the lifecycle and stamps the time of each status once', async () => {
    const id = await insertBatch({ status: 'in_progress', inProgressAt: 1 });
    assert.equal(await moveBatch(db, id, 'finalizing'), 'moved');
    const first = (await row(id)).finalizingAt;
    assert.ok(first && first > 1);
    await db.getRepository(BatchEntity).update({ id }, { finalizingAt: 5 });
    assert.equal(await moveBatch(db, id, 'finalizing'), 'unchanged', 'a retried write');
    assert.equal((await row(id)).finalizingAt, 5, 'the first stamp is kept');
    assert.equal(await moveBatch(db, id, 'completed'), 'moved');
    assert.equal((await row(id)).status, 'completed');
  });

  it('refuses an illegal move and leaves the row as it was', async () => {
    const id = await insertBatch({ status: 'completed', completedAt: 7 });
    for (const to of ['in_progress', 'failed', 'cancelling', 'cancelled'] as BatchStatus[])
      assert.equal(await moveBatch(db, id, to), 'refused', to);
    const r = await row(id);
    assert.equal(r.status, 'completed');
    assert.equal(r.failedAt, null);
  });

  it('records details on the current status without moving it (the validated plan)', async () => {
    const id = await insertBatch({ total: 0 });
    assert.equal(await moveBatch(db, id, 'validating', { total: 42, model: 'm' }), 'unchanged');
    const r = await row(id);
    assert.deepEqual([r.status, r.total, r.model], ['validating', 42, 'm']);
  });

  it('admits first-created first, at most the limit, and says when a batch stopped waiting', async () => {
    await db.getRepository(BatchEntity).clear();
    const a = await insertBatch();
    const b = await insertBatch();
    const c = await insertBatch();
    assert.equal(await admitBatch(db, b, 2), 'queued', 'b waits behind a, created before it');
    assert.equal(await admitBatch(db, a, 2), 'admitted');
    assert.equal(await admitBatch(db, a, 2), 'admitted', 'a retry of a committed admission still admits');
    assert.equal(await admitBatch(db, b, 2), 'admitted');
    assert.equal(await admitBatch(db, c, 2), 'queued', 'two of two slots are held');
    assert.equal(await moveBatch(db, a, 'finalizing'), 'moved');
    assert.equal(await admitBatch(db, c, 2), 'queued', 'finalizing still holds its slot');
    assert.equal(await moveBatch(db, a, 'completed'), 'moved');
    assert.equal(await admitBatch(db, c, 2), 'admitted');
    const d = await insertBatch();
    assert.equal(await moveBatch(db, d, 'cancelling'), 'moved');
    assert.equal(await admitBatch(db, d, 5), 'gone');
  });
});
