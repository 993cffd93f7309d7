import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import OpenAI, { toFile } from 'openai';
import { BatchEntity, FileEntity } from '../../src/db/entities';
import { projectRoot } from '../../src/paths';
import { batchLines, toJsonl } from '../support/batches';
import { startStack, type Stack } from '../support/stack';

/** The SDK's way to send the header on one request. */
const withKey = (key: string) => ({ headers: { 'Idempotency-Key': key } });

/** Rejects with an OpenAI-shaped APIError of this status and code. */
async function apiError(promise: Promise<unknown>, status: number, code: string) {
  const err = await promise.then(
    () => assert.fail(`expected a ${status} ${code}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof OpenAI.APIError, `expected an APIError, got ${String(err)}`);
  assert.equal(err.status, status, err.message);
  assert.deepEqual(Object.keys(err.error as object).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(err.code, code);
  return err;
}

describe('Idempotency-Key on POST /v1/files and POST /v1/batches, through the official SDKs', function () {
  this.timeout(120_000);
  let s: Stack;
  let uploads = 0;
  // No worker: batches stay as created, and no result file appears beside the uploads.
  before(async () => {
    s = await startStack({ worker: false });
  });
  after(async () => s?.close());

  /** Uploads `content` under a filename of its own (to count its rows), with the key if given. */
  async function upload(content: string | Buffer, key?: string, openai = s.openai, filename?: string) {
    const name = filename ?? `idem-${++uploads}.jsonl`;
    const { data, response } = await openai.files
      .create({ file: await toFile(Buffer.from(content), name), purpose: 'batch' }, key ? withKey(key) : {})
      .withResponse();
    return { file: data, replayed: response.headers.get('idempotent-replayed') === 'true' };
  }
  async function createBatch(inputFileId: string, key: string, metadata?: Record<string, string>) {
    const { data, response } = await s.openai.batches
      .create(
        { input_file_id: inputFileId, endpoint: '/v1/chat/completions', completion_window: '24h', metadata },
        withKey(key),
      )
      .withResponse();
    return { batch: data, replayed: response.headers.get('idempotent-replayed') === 'true' };
  }
  const filesNamed = (filename: string) => s.db.getRepository(FileEntity).countBy({ filename });
  const batchesOf = (inputFileId: string) => s.db.getRepository(BatchEntity).countBy({ inputFileId });
  /** Every stored blob belongs to a file row: a duplicate upload would leave one more blob than rows. */
  async function assertBlobsMatchRows() {
    const blobs = await s.storedFiles();
    const rows = await s.db.getRepository(FileEntity).find({ select: { id: true } });
    assert.deepEqual(blobs.sort(), rows.map((r) => r.id).sort());
  }
  /**
   * As many workflows on this stack's task queue (a queue of its own) as batch rows. Temporal's visibility lags
   * behind a start, so the count is awaited up to the rows' number; a batch's row exists before its workflow.
   */
  async function assertOneWorkflowPerBatch() {
    const batches = await s.db.getRepository(BatchEntity).count();
    const query = `TaskQueue = '${s.config.taskQueue}'`;
    const deadline = Date.now() + 10_000;
    let { count } = await s.temporal.workflow.count(query);
    while (count < batches && Date.now() < deadline) {
      await sleep(50);
      ({ count } = await s.temporal.workflow.count(query));
    }
    assert.equal(count, batches);
  }

  it('answers the same file to the same upload with the same key, storing it once', async () => {
    const content = toJsonl(batchLines(3));
    const first = await upload(content, 'upload-1', s.openai, 'same.jsonl');
    const second = await upload(content, 'upload-1', s.openai, 'same.jsonl');
    assert.equal(await filesNamed('same.jsonl'), 1);
    await assertBlobsMatchRows();
    assert.deepEqual(second.file, first.file);
    assert.deepEqual([first.replayed, second.replayed], [false, true]);
  });

  it('answers the same batch to the same request with the same key, starting one workflow', async () => {
    const { file } = await upload(toJsonl(batchLines(2)));
    const first = await createBatch(file.id, 'batch-1', { run: 'a' });
    const second = await createBatch(file.id, 'batch-1', { run: 'a' });
    assert.equal(await batchesOf(file.id), 1);
    await assertOneWorkflowPerBatch();
    assert.deepEqual(second.batch, first.batch);
    assert.deepEqual([first.replayed, second.replayed], [false, true]);
  });

  it("takes the Node SDK's idempotencyKey option once the client names the header", async () => {
    // The OpenAI client names no idempotency header; with one, it also sends a fresh key on every POST and
    // reuses it on its own retries.
    class RetrySafeOpenAI extends OpenAI {
      protected override idempotencyHeader = 'Idempotency-Key';
    }
    const openai = new RetrySafeOpenAI({ apiKey: s.keyA, baseURL: s.baseURL, maxRetries: 0 });
    const { file } = await upload(toJsonl(batchLines(2)));
    const params = {
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    } as const;
    const first = await openai.batches.create(params, { idempotencyKey: 'sdk-option' });
    const second = await openai.batches.create(params, { idempotencyKey: 'sdk-option' });
    assert.equal(second.id, first.id);
    const third = await openai.batches.create(params);
    assert.notEqual(third.id, first.id, 'a call without the option gets a key of its own');
    assert.equal(await batchesOf(file.id), 2);
  });

  it('answers a request sent while the first with its key is still running with the same object', async () => {
    // About 24 MB: receiving, hashing, checking and storing it keeps the first request busy.
    const big = toJsonl(
      batchLines(60_000).map((l) => ({ ...l, body: { ...l.body, padding: 'x'.repeat(300) } })),
    );
    const [a, b] = await Promise.all([
      upload(big, 'big-upload', s.openai, 'big.jsonl'),
      upload(big, 'big-upload', s.openai, 'big.jsonl'),
    ]);
    assert.equal(a.file.id, b.file.id);
    assert.deepEqual([a.replayed, b.replayed].sort(), [false, true]);
    assert.equal(await filesNamed('big.jsonl'), 1);
    await assertBlobsMatchRows();

    const [x, y] = await Promise.all([
      createBatch(a.file.id, 'big-batch'),
      createBatch(a.file.id, 'big-batch'),
    ]);
    assert.equal(x.batch.id, y.batch.id);
    assert.equal(await batchesOf(a.file.id), 1);
  });

  it('refuses the key with a different request: 400 idempotency_key_reused, not to be retried', async () => {
    const { file } = await upload(toJsonl(batchLines(2)), 'reused');
    let err = await apiError(upload(toJsonl(batchLines(3)), 'reused'), 400, 'idempotency_key_reused');
    assert.equal(err.headers.get('x-should-retry'), 'false');
    await createBatch(file.id, 'reused-batch', { run: 'a' });
    err = await apiError(createBatch(file.id, 'reused-batch', { run: 'b' }), 400, 'idempotency_key_reused');
    assert.equal(err.headers.get('x-should-retry'), 'false');
    // One key, one request: the key of an upload cannot create a batch.
    await apiError(createBatch(file.id, 'reused'), 400, 'idempotency_key_reused');
    assert.equal(await batchesOf(file.id), 1);
  });

  it("keeps each tenant's keys apart", async () => {
    const content = toJsonl(batchLines(2));
    const a = await upload(content, 'shared-key');
    const b = await upload(content, 'shared-key', s.openaiB);
    assert.equal(b.replayed, false);
    assert.notEqual(b.file.id, a.file.id);
    assert.equal((await s.openaiB.files.retrieve(b.file.id)).id, b.file.id);
  });

  it('frees the key of a request that failed, so that the corrected request succeeds with it', async () => {
    await apiError(upload('not json\n', 'fix-upload'), 400, 'invalid_jsonl');
    const fixed = await upload(toJsonl(batchLines(2)), 'fix-upload');
    assert.equal(fixed.replayed, false);

    await apiError(createBatch('file-doesnotexist', 'fix-batch'), 404, 'not_found');
    const created = await createBatch(fixed.file.id, 'fix-batch');
    assert.equal(created.replayed, false);
    assert.equal((await createBatch(fixed.file.id, 'fix-batch')).batch.id, created.batch.id);
  });

  it('refuses a key longer than 255 characters or not printable ASCII', async () => {
    await apiError(upload(toJsonl(batchLines(1)), 'k'.repeat(256)), 400, 'invalid_idempotency_key');
    const { file } = await upload(toJsonl(batchLines(1)));
    await apiError(createBatch(file.id, 'k'.repeat(256)), 400, 'invalid_idempotency_key');
    await apiError(createBatch(file.id, 'tab\tin key'), 400, 'invalid_idempotency_key');
    assert.equal(await batchesOf(file.id), 0);
  });

  it('works from the Python SDK with extra_headers, whose multipart boundary differs on each request', async function () {
    const python = path.join(projectRoot, '.tools', 'pyvenv', 'bin', 'python');
    if (!fs.existsSync(python)) this.skip();
    const script = path.join(projectRoot, 'test', 'python', 'idempotent_create.py');
    const { stdout } = await promisify(execFile)(python, [script], {
      env: { ...process.env, BESH_BASE_URL: s.baseURL, BESH_API_KEY: s.keyA },
      timeout: 60_000,
    });
    const seen = JSON.parse(stdout) as { file_ids: string[]; batch_ids: string[]; filename: string };
    assert.equal(new Set(seen.file_ids).size, 1);
    assert.equal(new Set(seen.batch_ids).size, 1);
    assert.equal(await filesNamed(seen.filename), 1);
    assert.equal(await batchesOf(seen.file_ids[0]), 1);
  });
});
