import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { chunkSizeFor } from '../../activities/validate-input';
import { loadConfig } from '../../src/config';
import { MODEL_MAX_LENGTH } from '../../src/db/entities';
import { LocalBlobStore } from '../../src/storage/local-blob-store';
import { validateStoredFile } from '../support/validate';

const ENDPOINT = '/v1/chat/completions';

const request = (id: string, model = 'llama') =>
  JSON.stringify({ custom_id: id, method: 'POST', url: ENDPOINT, body: { model, messages: [] } });

describe('validateInput activity', () => {
  let dir: string;
  let blobs: LocalBlobStore;
  let fileNo = 0;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'besh-validate-'));
    blobs = new LocalBlobStore(dir);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** Stores `content` as a new blob and validates it; returns the result and the stored bytes. */
  async function validate(content: string, env: Record<string, string> = {}) {
    const key = `file-${++fileNo}`;
    await blobs.put(key, Readable.from([Buffer.from(content)]));
    const result = await validateStoredFile(loadConfig({ DATA_DIR: dir, ...env }), blobs, key, ENDPOINT);
    return { result, bytes: Buffer.from(content) };
  }

  async function errorsOf(content: string, env: Record<string, string> = {}) {
    const { result } = await validate(content, env);
    assert.equal(result.ok, false, 'the file should have been rejected');
    return result.ok ? [] : result.errors;
  }

  for (const total of [1, 245, 5000]) {
    it(`plans chunks that exactly tile ${total} requests, skipping blank lines`, async () => {
      const ids = Array.from({ length: total }, (_, i) => `req-${i}`);
      // A blank line (or whitespace-only, or CRLF) every few requests, and a trailing blank line.
      const content = ids.map(
        (id, i) => request(id) + (i % 7 === 3 ? '\n\n' : i % 11 === 5 ? '\r\n  \n' : '\n'),
      );
      const { result, bytes } = await validate(content.join('') + '\n');

      assert.ok(result.ok, JSON.stringify(result));
      assert.equal(result.total, total);
      assert.equal(result.model, 'llama');
      assert.equal(result.chunks.length, Math.ceil(total / chunkSizeFor(total)));
      if (total > 100) assert.ok(result.chunks.length > 1, 'several chunks');

      assert.equal(result.chunks[0].start, 0);
      const seen: string[] = [];
      for (const [i, chunk] of result.chunks.entries()) {
        assert.equal(chunk.index, i);
        if (i > 0) assert.equal(chunk.start, result.chunks[i - 1].end, `chunk ${i} is contiguous`);
        const lines = bytes
          .subarray(chunk.start, chunk.end)
          .toString('utf8')
          .split('\n')
          .filter((l) => l.trim());
        assert.equal(lines.length, chunk.lines, `chunk ${i} holds exactly its lines`);
        seen.push(...lines.map((l) => (JSON.parse(l) as { custom_id: string }).custom_id));
      }
      assert.deepEqual(seen, ids);
      assert.ok(result.window >= 2 && result.window <= 64);
    });
  }

  it('ends the last chunk at the last request when the file has no trailing newline', async () => {
    const content = `${request('a')}\n${request('b')}`;
    const { result } = await validate(content);
    assert.ok(result.ok);
    assert.deepEqual(result.chunks, [{ index: 0, start: 0, end: Buffer.byteLength(content), lines: 2 }]);
  });

  it('accepts a file that starts with a UTF-8 byte-order mark, as the upload check does', async () => {
    const { result } = await validate(`\uFEFF${request('a')}\n${request('b')}\n`);
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.total, 2);
  });

  it('rejects a model name longer than the batch can record, with its line, and plans nothing', async () => {
    const long = 'm'.repeat(MODEL_MAX_LENGTH + 1);
    const { result } = await validate(`${request('a', long)}\n${request('b', long)}\n`);
    assert.equal(result.ok, false);
    const errors = result.ok ? [] : result.errors;
    assert.deepEqual(
      errors.map((e) => [e.code, e.line, e.param]),
      [
        ['invalid_model', 1, 'body.model'],
        ['invalid_model', 2, 'body.model'],
      ],
    );
    assert.ok(JSON.stringify(result).length < 1000, 'the user string is not echoed');
  });

  it('keeps the validation result bounded whatever the input', async () => {
    const huge = 'x'.repeat(200_000);
    const lines = Array.from({ length: 300 }, (_, i) => request(`${huge}${i}`, huge));
    const { result } = await validate(lines.join('\n'));
    assert.ok(JSON.stringify(result).length < 64 * 1024, `${JSON.stringify(result).length} bytes`);
  });

  it('reports an unparseable line with its 1-based line number', async () => {
    const errors = await errorsOf(`${request('a')}\n\n{"custom_id": "b",\n${request('c')}\n`);
    assert.deepEqual(
      errors.map((e) => [e.code, e.line]),
      [['invalid_json_line', 3]],
    );
  });

  it('reports a JSON line that is not an object', async () => {
    const errors = await errorsOf(`${request('a')}\n[1,2]\n"text"\nnull\n`);
    assert.deepEqual(
      errors.map((e) => [e.code, e.line]),
      [
        ['invalid_json_line', 2],
        ['invalid_json_line', 3],
        ['invalid_json_line', 4],
      ],
    );
    assert.match(errors[0].message, /not a JSON object/);
  });

  it('reports bad fields of a request with their param', async () => {
    const bad = [
      request('a'),
      request('a'),
      JSON.stringify({ custom_id: 'c', method: 'GET', url: '/v1/embeddings', body: { model: 'other' } }),
      JSON.stringify({ method: 'POST', url: ENDPOINT, body: 'x' }),
    ];
    const errors = await errorsOf(bad.join('\n'));
    assert.deepEqual(
      errors.map((e) => [e.code, e.line, e.param]),
      [
        ['duplicate_custom_id', 2, 'custom_id'],
        ['invalid_method', 3, 'method'],
        ['url_mismatch', 3, 'url'],
        ['model_mismatch', 3, 'body.model'],
        ['missing_custom_id', 4, 'custom_id'],
        ['missing_body', 4, 'body'],
      ],
    );
  });

  for (const [name, content] of [
    ['an empty file', ''],
    ['a blank-only file', '\n  \r\n\t\n'],
  ]) {
    it(`rejects ${name} as empty_file`, async () => {
      const errors = await errorsOf(content);
      assert.deepEqual(
        errors.map((e) => [e.code, e.line]),
        [['empty_file', null]],
      );
    });
  }

  it('rejects more than MAX_BATCH_REQUESTS requests as too_many_tasks', async () => {
    const env = { MAX_BATCH_REQUESTS: '3' };
    const three = [request('a'), request('b'), '', request('c')].join('\n');
    assert.ok((await validate(three, env)).result.ok);

    const errors = await errorsOf(`${three}\n\n${request('d')}\n`, env);
    assert.deepEqual(
      errors.map((e) => [e.code, e.line]),
      [['too_many_tasks', 6]],
    );
  });

  it('caps the error list at 100 entries', async () => {
    const errors = await errorsOf('not json\n'.repeat(500));
    assert.equal(errors.length, 100);
    assert.deepEqual(
      errors.map((e) => e.line),
      Array.from({ length: 100 }, (_, i) => i + 1),
    );
  });
});

describe('chunkSizeFor', () => {
  it('aims at about 50 chunks, between 100 and 1000 requests each', () => {
    assert.equal(chunkSizeFor(1), 100);
    assert.equal(chunkSizeFor(5000), 100);
    assert.equal(chunkSizeFor(5001), 101);
    assert.equal(chunkSizeFor(10_000), 200);
    assert.equal(chunkSizeFor(50_000), 1000);
    assert.equal(chunkSizeFor(10_000_000), 1000);
  });
});
