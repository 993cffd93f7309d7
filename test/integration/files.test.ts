import assert from 'node:assert/strict';
import { gzipSync, createGzip } from 'node:zlib';
import { Readable } from 'node:stream';
import OpenAI, { toFile } from 'openai';
import { FileEntity } from '../../src/db/entities';
import { assertOpenApi } from '../support/openapi';
import { startStack, type Stack } from '../support/stack';

const line = (i: number) =>
  JSON.stringify({
    custom_id: `r${i}`,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'm', messages: [{ role: 'user', content: `q${i}` }] },
  });
const jsonl = (n: number) => Array.from({ length: n }, (_, i) => line(i)).join('\n') + '\n';

/** Raw multipart upload, for the cases the SDK would not send. */
async function rawUpload(
  s: Stack,
  parts: { purpose?: string; file?: { name: string; data: Buffer } },
  key = s.keyA,
) {
  const form = new FormData();
  if (parts.purpose !== undefined) form.append('purpose', parts.purpose);
  if (parts.file) form.append('file', new Blob([parts.file.data]), parts.file.name);
  const res = await fetch(`${s.baseURL}/files`, {
    method: 'POST',
    body: form,
    headers: { authorization: `Bearer ${key}` },
  });
  return {
    status: res.status,
    body: (await res.json()) as {
      error: { message: string; type: string; param: string | null; code: string | null };
    },
  };
}

async function expectError(promise: Promise<unknown>, status: number, pattern: RegExp, code?: string) {
  const err = await promise.then(
    () => assert.fail('expected an error'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof OpenAI.APIError, `expected an APIError, got ${String(err)}`);
  assert.equal(err.status, status, err.message);
  assert.match(err.message, pattern);
  const body = err.error as Record<string, unknown>;
  assert.deepEqual(Object.keys(body).sort(), ['code', 'message', 'param', 'type']);
  if (code) assert.equal(body.code, code);
}

describe('Files API through the openai SDK', function () {
  this.timeout(60_000);
  let s: Stack;
  before(async () => {
    s = await startStack({ worker: false, env: { MAX_UPLOAD_BYTES: String(2 * 1024 * 1024) } });
  });
  after(async () => s?.close());

  it('uploads, lists, retrieves, downloads byte-identical and deletes a batch file @smoke', async () => {
    const content = jsonl(50);
    const file = await s.openai.files.create({
      file: await toFile(Buffer.from(content), 'requests.jsonl'),
      purpose: 'batch',
    });
    assertOpenApi('OpenAIFile', file);
    assert.match(file.id, /^file-[A-Za-z0-9]{24}$/);
    assert.equal(file.bytes, Buffer.byteLength(content));
    assert.equal(file.filename, 'requests.jsonl');
    assert.equal(file.status, 'processed');
    assert.equal(file.expires_at, file.created_at + 30 * 24 * 3600);

    const got = await s.openai.files.retrieve(file.id);
    assert.deepEqual(got, file);
    const list = await s.openai.files.list();
    const raw = await fetch(`${s.baseURL}/files?purpose=batch`, {
      headers: { authorization: `Bearer ${s.keyA}` },
    });
    assertOpenApi('ListFilesResponse', await raw.json());
    assert.ok(list.data.some((f) => f.id === file.id));
    const body = await (await s.openai.files.content(file.id)).text();
    assert.equal(body, content);

    const del = await s.openai.files.delete(file.id);
    assertOpenApi('DeleteFileResponse', del);
    assert.deepEqual(del, { id: file.id, object: 'file', deleted: true });
    await expectError(s.openai.files.retrieve(file.id), 404, /No such File object/);
    assert.deepEqual(await s.storedFiles(), []);
  });

  it('honours expires_after and keeps other purposes without an expiry', async () => {
    const a = await s.openai.files.create({
      file: await toFile(Buffer.from(jsonl(1)), 'a.jsonl'),
      purpose: 'batch',
      expires_after: { anchor: 'created_at', seconds: 7200 },
    });
    assert.equal(a.expires_at, a.created_at + 7200);
    const b = await s.openai.files.create({
      file: await toFile(Buffer.from('not json at all'), 'notes.txt'),
      purpose: 'user_data',
    });
    assert.equal(b.expires_at, null);
    assert.equal(b.purpose, 'user_data');
    await expectError(
      s.openai.files.create({
        file: await toFile(Buffer.from(jsonl(1)), 'a.jsonl'),
        purpose: 'batch',
        expires_after: { anchor: 'created_at', seconds: 60 },
      }),
      400,
      /expires_after\[seconds\]/,
    );
  });

  it('decompresses a gzip upload detected by its magic bytes, whatever its name', async () => {
    const content = jsonl(20);
    const file = await s.openai.files.create({
      file: await toFile(gzipSync(content), 'requests.jsonl'),
      purpose: 'batch',
    });
    assert.equal(file.bytes, Buffer.byteLength(content));
    assert.equal(await (await s.openai.files.content(file.id)).text(), content);
  });

  it('paginates with limit, order and after', async () => {
    const t = await startStack({ worker: false });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++)
        ids.push(
          (
            await t.openai.files.create({
              file: await toFile(Buffer.from(jsonl(1)), `f${i}.jsonl`),
              purpose: 'batch',
            })
          ).id,
        );
      const page1 = await t.openai.files.list({ limit: 2 });
      assert.equal(page1.data.length, 2);
      assert.equal(page1.has_more, true);
      const all: string[] = [];
      for await (const f of t.openai.files.list({ limit: 2 })) all.push(f.id);
      assert.equal(all.length, 5);
      assert.equal(new Set(all).size, 5);
      const asc: string[] = [];
      for await (const f of t.openai.files.list({ limit: 3, order: 'asc' })) asc.push(f.id);
      assert.deepEqual(asc, [...all].reverse());
      assert.deepEqual(new Set(all), new Set(ids));
    } finally {
      await t.close();
    }
  });

  describe('bad input gets an OpenAI-shaped error and writes nothing', () => {
    let before: { rows: number; blobs: string[] };
    beforeEach(async () => {
      before = { rows: await s.db.getRepository(FileEntity).count(), blobs: await s.storedFiles() };
    });
    afterEach(async () => {
      assert.equal(await s.db.getRepository(FileEntity).count(), before.rows, 'no file row written');
      assert.deepEqual(await s.storedFiles(), before.blobs, 'no blob written');
    });
    const upload = async (
      data: Buffer | string,
      name = 'x.jsonl',
      purpose: 'batch' | 'user_data' = 'batch',
    ) => s.openai.files.create({ file: await toFile(Buffer.from(data), name), purpose });

    it('invalid JSON on line N', async () => {
      await expectError(
        upload(`${line(1)}\n${line(2)}\n{"custom_id": oops}\n`),
        400,
        /^400 Line 3 is not valid JSON/,
        'invalid_jsonl',
      );
    });
    it('a line that is not an object', async () => {
      await expectError(upload(`${line(1)}\n[1,2]\n`), 400, /Line 2 is not a JSON object/, 'invalid_jsonl');
    });
    it('non-UTF-8 bytes', async () => {
      await expectError(
        upload(Buffer.concat([Buffer.from(line(1) + '\n'), Buffer.from([0xff, 0xfe, 0x0a])])),
        400,
        /not valid UTF-8 \(line 2\)/,
        'invalid_encoding',
      );
    });
    it('an empty file', async () => {
      await expectError(upload(''), 400, /The file is empty/, 'empty_file');
      await expectError(upload('\n  \n'), 400, /The file is empty/, 'empty_file');
    });
    it('an upload over the size limit', async () => {
      await expectError(
        upload(Buffer.alloc(3 * 1024 * 1024, 0x20)),
        413,
        /maximum upload size of 2 MB/,
        'file_too_large',
      );
    });
    it('a compression bomb', async () => {
      const zeros = Readable.from(
        (function* () {
          for (let i = 0; i < 400; i++) yield Buffer.alloc(256 * 1024);
        })(),
      );
      const chunks: Buffer[] = [];
      for await (const c of zeros.pipe(createGzip())) chunks.push(c as Buffer);
      const bomb = Buffer.concat(chunks);
      assert.ok(bomb.length < 2 * 1024 * 1024);
      await expectError(upload(bomb), 413, /after decompression/, 'file_too_large');
    });
    it('an unknown purpose', async () => {
      const r = await rawUpload(s, {
        purpose: 'mischief',
        file: { name: 'a.jsonl', data: Buffer.from(line(1)) },
      });
      assert.equal(r.status, 400);
      assert.equal(r.body.error.param, 'purpose');
      assert.match(r.body.error.message, /Invalid value for 'purpose'/);
    });
    it('a missing file field', async () => {
      const r = await rawUpload(s, { purpose: 'batch' });
      assert.equal(r.status, 400);
      assert.equal(r.body.error.param, 'file');
      assert.match(r.body.error.message, /Missing required parameter: 'file'/);
    });
    it('a body that is not multipart', async () => {
      const res = await fetch(`${s.baseURL}/files`, {
        method: 'POST',
        body: '{}',
        headers: { authorization: `Bearer ${s.keyA}`, 'content-type': 'application/json' },
      });
      assert.equal(res.status, 400);
      assert.match(
        ((await res.json()) as { error: { message: string } }).error.message,
        /multipart\/form-data/,
      );
    });
  });

  describe('ids, keys and tenants', () => {
    let mine: string;
    before(async () => {
      mine = (
        await s.openai.files.create({
          file: await toFile(Buffer.from(jsonl(2)), 'mine.jsonl'),
          purpose: 'batch',
        })
      ).id;
    });
    it('answers 404 for ids shaped like paths and for unknown ids', async () => {
      for (const id of ['../x', '..%2F..%2Fetc%2Fpasswd', 'file-doesnotexist', "file-1' OR '1'='1"]) {
        const res = await fetch(`${s.baseURL}/files/${encodeURIComponent(id)}/content`, {
          headers: { authorization: `Bearer ${s.keyA}` },
        });
        assert.equal(res.status, 404, id);
        const body = (await res.json()) as { error: { message: string } };
        assert.doesNotMatch(body.error.message, /\/tmp|\/work|Error:|at /);
      }
    });
    it('answers 401 in the OpenAI shape for a missing or wrong key', async () => {
      const res = await fetch(`${s.baseURL}/files`);
      assert.equal(res.status, 401);
      assert.equal(((await res.json()) as { error: { type: string } }).error.type, 'authentication_error');
      const wrong = new OpenAI({ apiKey: 'sk-wrong-key-000000000000', baseURL: s.baseURL, maxRetries: 0 });
      await expectError(wrong.files.list(), 401, /Incorrect API key/, 'invalid_api_key');
    });
    it("hides one tenant's files from another (404, never 403)", async () => {
      await expectError(s.openaiB.files.retrieve(mine), 404, /No such File object/);
      await expectError(s.openaiB.files.content(mine), 404, /No such File object/);
      await expectError(s.openaiB.files.delete(mine), 404, /No such File object/);
      const theirs = await s.openaiB.files.list();
      assert.ok(!theirs.data.some((f) => f.id === mine));
      assert.equal((await s.openai.files.retrieve(mine)).id, mine);
    });
    it('answers unknown /v1 routes with 404 JSON', async () => {
      const res = await fetch(`${s.baseURL}/nothing-here`, {
        headers: { authorization: `Bearer ${s.keyA}` },
      });
      assert.equal(res.status, 404);
      assert.match(res.headers.get('content-type') ?? '', /json/);
    });
  });
});
