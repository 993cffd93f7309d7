import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { JsonlCheck, type JsonlCheckOptions } from '../../src/files/jsonl-check';
import { UploadError } from '../../src/files/upload-error';

const batch: JsonlCheckOptions = { requireJsonObjects: true, maxLineBytes: 1024 };

function split(data: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) chunks.push(data.subarray(i, i + size));
  return chunks;
}

/** Runs `data` through a JsonlCheck in `size`-byte chunks and returns what came out. */
async function check(data: Buffer | string, opts: JsonlCheckOptions = batch, size = 64 * 1024) {
  const input = Buffer.from(data);
  const checker = new JsonlCheck(opts);
  const out: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      out.push(chunk);
      done();
    },
  });
  await pipeline(Readable.from(split(input, size)), checker, sink);
  return { out: Buffer.concat(out), lines: checker.lines, bytes: checker.bytes };
}

const rejected = (status: number, code: string, message: string) => (err: unknown) => {
  assert.ok(err instanceof UploadError, `expected an UploadError, got ${String(err)}`);
  assert.deepEqual([err.status, err.code, err.param, err.message], [status, code, 'file', message]);
  return true;
};

const parseError = (text: string): string => {
  try {
    JSON.parse(text);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error(`${text} parses`);
};

const request = (i: number) =>
  JSON.stringify({
    custom_id: `req-${i}`,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { text: 'é 😀 中文' },
  });

describe('JsonlCheck', () => {
  it('passes bytes through unchanged and counts lines and bytes', async () => {
    const data = Buffer.from(Array.from({ length: 500 }, (_, i) => request(i)).join('\n') + '\n');
    for (const size of [7, 1000, 64 * 1024]) {
      const { out, lines, bytes } = await check(data, batch, size);
      assert.ok(out.equals(data));
      assert.equal(lines, 500);
      assert.equal(bytes, data.length);
    }
  });

  it('accepts multi-byte characters split across 1-byte chunks', async () => {
    const data = Buffer.from(`${request(1)}\n{"s":"😀€中"}`);
    const { out, lines } = await check(data, batch, 1);
    assert.ok(out.equals(data));
    assert.equal(lines, 2);
  });

  it('rejects invalid UTF-8 with its line number', async () => {
    const bad = Buffer.concat([Buffer.from('{}\n{"a":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}\n')]);
    await assert.rejects(
      check(bad, batch, 1),
      rejected(400, 'invalid_encoding', 'File is not valid UTF-8 (line 2)'),
    );
    // A sequence cut off by the end of the file is invalid too.
    const cut = Buffer.concat([Buffer.from('{}\n{}\n{"a":"'), Buffer.from('中').subarray(0, 2)]);
    await assert.rejects(check(cut), rejected(400, 'invalid_encoding', 'File is not valid UTF-8 (line 3)'));
  });

  it('allows a UTF-8 BOM at the start', async () => {
    const { lines } = await check(
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":1}\n{}\n')]),
    );
    assert.equal(lines, 2);
  });

  it('rejects NUL bytes with their line number', async () => {
    await assert.rejects(
      check('{}\n{}\n{"a":"\0"}\n', { ...batch, requireJsonObjects: false }),
      rejected(400, 'invalid_file', 'File contains a NUL byte (line 3)'),
    );
  });

  it('rejects a line over the limit, counting neither CR nor LF', async () => {
    const opts = { ...batch, maxLineBytes: 100 };
    const exact = `{"a":"${'x'.repeat(92)}"}`;
    assert.equal(Buffer.byteLength(exact), 100);
    assert.equal((await check(`${exact}\r\n${exact}`, opts, 1)).lines, 2);
    await assert.rejects(
      check(`{}\n{"a":"${'x'.repeat(93)}"}\n`, opts),
      rejected(400, 'line_too_long', 'Line 2 exceeds the maximum line length of 100 bytes'),
    );
  });

  it('fails an endless line as soon as it passes the limit', async () => {
    let pulled = 0;
    const endless = Readable.from(
      (function* () {
        for (;;) yield ((pulled += 1), Buffer.alloc(64 * 1024, 0x61));
      })(),
    );
    const opts = { ...batch, maxLineBytes: 1024 * 1024 };
    await assert.rejects(
      pipeline(endless, new JsonlCheck(opts), new Writable({ write: (_c, _e, done) => done() })),
      rejected(400, 'line_too_long', 'Line 1 exceeds the maximum line length of 1 MB'),
    );
    assert.ok(pulled < 40, `pulled ${pulled} chunks`);
  });

  it('reports the first invalid JSON line with the parser reason, and stops there', async () => {
    const data = `{"a":1}\n\n{a:1}\n[1]\n`;
    await assert.rejects(
      check(data),
      rejected(400, 'invalid_jsonl', `Line 3 is not valid JSON: ${parseError('{a:1}')}`),
    );
  });

  it('checks the last line even without a trailing newline', async () => {
    await assert.rejects(
      check('{}\n{"a":'),
      rejected(400, 'invalid_jsonl', `Line 2 is not valid JSON: ${parseError('{"a":')}`),
    );
  });

  it('rejects lines that are JSON but not objects', async () => {
    for (const value of ['[1,2]', 'null', '42', '"text"', 'true']) {
      await assert.rejects(
        check(`{}\n${value}\n`),
        rejected(400, 'invalid_jsonl', 'Line 2 is not a JSON object'),
      );
    }
  });

  it('ignores blank lines and accepts CRLF', async () => {
    const data = Buffer.from(`\r\n  \r\n${request(1)}\r\n\t\n\n${request(2)}\r\n   `);
    const { out, lines } = await check(data, batch, 3);
    assert.ok(out.equals(data));
    assert.equal(lines, 2);
  });

  it('rejects an empty file, and a blank one when JSON is required', async () => {
    const empty = rejected(400, 'empty_file', 'The file is empty');
    await assert.rejects(check(''), empty);
    await assert.rejects(check('\n \r\n\t\n'), empty);
    await assert.rejects(check('', { ...batch, requireJsonObjects: false }), empty);
    assert.equal((await check('\n \n', { ...batch, requireJsonObjects: false })).lines, 0);
    assert.equal((await check('', { ...batch, rejectEmpty: false })).bytes, 0);
  });

  it('counts blank lines, whatever their chunking, and names lines after a run of them', async () => {
    const blanks = '\n \r\n\t\n\r\n'.repeat(250);
    for (const size of [1, 3, 7, 64 * 1024]) {
      const { lines } = await check(`${blanks}${request(1)}\n${blanks}${request(2)}`, batch, size);
      assert.equal(lines, 2);
      await assert.rejects(
        check(`${request(1)}\n${blanks}{a}\n`, batch, size),
        rejected(400, 'invalid_jsonl', `Line 1002 is not valid JSON: ${parseError('{a}')}`),
      );
    }
    // A blank line longer than the limit is still too long.
    await assert.rejects(
      check(`{}\n${' '.repeat(2000)}\n{}\n`),
      rejected(400, 'line_too_long', 'Line 2 exceeds the maximum line length of 1024 bytes'),
    );
  });

  it('allows exactly maxLines lines, blank ones included', async () => {
    const opts = { ...batch, maxLines: 3 };
    for (const ok of ['{}\n\n{}\n', '{}\n \n{}', '\n\n{}\n']) {
      for (const size of [1, 64]) await check(ok, opts, size);
    }
    const tooMany = rejected(400, 'too_many_lines', 'File has more than 3 lines (blank lines included)');
    for (const bad of ['{}\n\n{}\n ', '{}\n\n{}\n{}', '\n\n\n\n']) {
      for (const size of [1, 64]) await assert.rejects(check(bad, opts, size), tooMany);
    }
  });

  it('refuses a flood of newlines as soon as it passes maxLines, consuming little of it', async () => {
    // 64 MB of newlines: checking all of it is what a newline bomb costs without the limit.
    let pulled = 0;
    const flood = Readable.from(
      (function* () {
        const block = Buffer.alloc(64 * 1024, 0x0a);
        for (let i = 0; i < 1024; i++) yield ((pulled += block.length), block);
      })(),
    );
    const checker = new JsonlCheck({ ...batch, maxLines: 100_000 });
    await assert.rejects(
      pipeline(flood, checker, new Writable({ write: (_c, _e, done) => done() })),
      rejected(400, 'too_many_lines', 'File has more than 100000 lines (blank lines included)'),
    );
    assert.ok(checker.bytes <= 100_000 + 64 * 1024, `checked ${checker.bytes} bytes`);
    assert.ok(pulled <= 4 * 64 * 1024 + 100_000, `pulled ${pulled} bytes`);
  });

  it('accepts any UTF-8 text when JSON is not required', async () => {
    const { lines } = await check('plain text\nnot json [\n', { ...batch, requireJsonObjects: false });
    assert.equal(lines, 2);
  });
});
