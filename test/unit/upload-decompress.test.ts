import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import bzip2 from 'unbzip2-stream/lib/bzip2';
import { decompressed } from '../../src/files/decompress';
import { UploadError } from '../../src/files/upload-error';

const MB = 1024 * 1024;
const content = Buffer.from(
  Array.from({ length: 2000 }, (_, i) =>
    JSON.stringify({ custom_id: `r-${i}`, body: { text: 'héllo 😀 中文' } }),
  ).join('\n') + '\n',
);

/** A source delivering `data` in `size`-byte chunks, as a socket might. */
function chunked(data: Buffer, size = 1000): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) chunks.push(data.subarray(i, i + size));
  return Readable.from(chunks);
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function roundTrip(data: Buffer, maxBytes = 10 * MB, tmpDir = os.tmpdir()) {
  const result = await decompressed(chunked(data), { maxBytes, tmpDir });
  try {
    return { format: result.format, out: await collect(result.stream) };
  } finally {
    await result.cleanup();
  }
}

const uploadError = (status: number, code: string, message: string | RegExp) => (err: unknown) => {
  assert.ok(err instanceof UploadError, `expected an UploadError, got ${String(err)}`);
  assert.equal(err.status, status);
  assert.equal(err.code, code);
  assert.equal(err.param, 'file');
  if (typeof message === 'string') assert.equal(err.message, message);
  else assert.match(err.message, message);
  return true;
};

const has = (tool: string) => {
  try {
    execFileSync('which', [tool], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

/** Builds a zip with python3's zipfile: `entries` maps names to contents (a trailing "/" makes a directory). */
function makeZip(dir: string, entries: Record<string, string>): Buffer {
  const file = path.join(dir, 'fixture.zip');
  const script = [
    'import json, sys, zipfile',
    'entries = json.loads(sys.stdin.read())',
    "with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:",
    '    for name, data in entries.items(): z.writestr(name, data)',
  ].join('\n');
  execFileSync('python3', ['-c', script, file], { input: JSON.stringify(entries) });
  const zip = fs.readFileSync(file);
  fs.rmSync(file);
  return zip;
}

describe('decompressed()', () => {
  let tmpDir: string;
  beforeEach(() => {
    tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'besh-upload-test-'));
  });
  afterEach(() => fs.rmSync(tmpDir, { recursive: true, force: true }));

  it('passes plain bytes through unchanged', async () => {
    const { format, out } = await roundTrip(content);
    assert.equal(format, 'plain');
    assert.ok(out.equals(content));
  });

  it('keeps sources shorter than the magic bytes, delivered byte by byte', async () => {
    const result = await decompressed(chunked(Buffer.from('{}'), 1), { maxBytes: MB, tmpDir });
    assert.equal(result.format, 'plain');
    assert.equal((await collect(result.stream)).toString(), '{}');
    const empty = await decompressed(Readable.from([]), { maxBytes: MB, tmpDir });
    assert.equal((await collect(empty.stream)).length, 0);
  });

  it('detects gzip by its magic bytes even when they arrive split across chunks', async () => {
    const result = await decompressed(chunked(zlib.gzipSync(content), 1), { maxBytes: 10 * MB, tmpDir });
    assert.equal(result.format, 'gzip');
    assert.ok((await collect(result.stream)).equals(content));
  });

  it('decodes multi-member gzip', async () => {
    const half = content.length >> 1;
    const members = Buffer.concat([
      zlib.gzipSync(content.subarray(0, half)),
      zlib.gzipSync(content.subarray(half)),
    ]);
    const { format, out } = await roundTrip(members);
    assert.equal(format, 'gzip');
    assert.ok(out.equals(content));
  });

  it('treats text that merely starts like a bzip2 header as plain', async () => {
    const text = Buffer.from('BZhx not bzip2\n');
    const { format, out } = await roundTrip(text);
    assert.equal(format, 'plain');
    assert.ok(out.equals(text));
  });

  it('decodes bzip2', async function () {
    if (!has('bzip2')) this.skip();
    const { format, out } = await roundTrip(execFileSync('bzip2', ['-c'], { input: content }));
    assert.equal(format, 'bz2');
    assert.ok(out.equals(content));
  });

  it('rejects corrupt bzip2 with a 400', async function () {
    if (!has('bzip2')) this.skip();
    const bz = execFileSync('bzip2', ['-c'], { input: content });
    bz.fill(0x55, 20, 200);
    await assert.rejects(
      roundTrip(bz),
      uploadError(400, 'invalid_file', 'could not decompress the bz2 upload: corrupt or truncated data'),
    );
  });

  it('streams the single file of a zip and removes its spool file on cleanup', async () => {
    const zip = makeZip(tmpDir, {
      'data/': '',
      'data/batch.jsonl': content.toString(),
      '__MACOSX/._batch.jsonl': 'x',
    });
    const result = await decompressed(chunked(zip), { maxBytes: 10 * MB, tmpDir });
    assert.equal(result.format, 'zip');
    assert.ok((await collect(result.stream)).equals(content));
    assert.equal(fs.readdirSync(tmpDir).length, 1, 'the spooled zip exists until cleanup');
    await result.cleanup();
    await result.cleanup();
    assert.deepEqual(fs.readdirSync(tmpDir), []);
  });

  it('rejects a zip with two files and leaves no spool file behind', async () => {
    const zip = makeZip(tmpDir, { 'a.jsonl': '{}\n', 'b.jsonl': '{}\n' });
    await assert.rejects(
      decompressed(chunked(zip), { maxBytes: MB, tmpDir }),
      uploadError(400, 'invalid_file', 'zip archive must contain exactly one file'),
    );
    assert.deepEqual(fs.readdirSync(tmpDir), []);
  });

  it('rejects a zip with only directories', async () => {
    await assert.rejects(
      decompressed(chunked(makeZip(tmpDir, { 'empty/': '' })), { maxBytes: MB, tmpDir }),
      uploadError(400, 'invalid_file', 'zip archive must contain exactly one file'),
    );
  });

  it('rejects a corrupt zip without exposing paths', async () => {
    const junk = Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.alloc(100, 7)]);
    await assert.rejects(decompressed(chunked(junk), { maxBytes: MB, tmpDir }), (err) => {
      uploadError(400, 'invalid_file', /^could not decompress the zip upload: /)(err);
      assert.ok(!(err as Error).message.includes(tmpDir));
      return true;
    });
    assert.deepEqual(fs.readdirSync(tmpDir), []);
  });

  it('refuses a zip whose file declares more than the limit before streaming it', async () => {
    const zip = makeZip(tmpDir, { 'big.jsonl': 'x'.repeat(2 * MB) });
    await assert.rejects(
      decompressed(chunked(zip), { maxBytes: MB, tmpDir }),
      uploadError(413, 'file_too_large', 'File exceeds the maximum size of 1 MB after decompression'),
    );
  });

  it('refuses compressed input far larger than the limit while spooling, and ends the source', async () => {
    const endless = Readable.from(
      (function* () {
        yield Buffer.from([0x50, 0x4b, 0x03, 0x04]);
        for (;;) yield Buffer.alloc(64 * 1024, 0x20);
      })(),
    );
    await assert.rejects(
      decompressed(endless, { maxBytes: MB, tmpDir }),
      uploadError(413, 'file_too_large', 'File exceeds the maximum size of 1 MB'),
    );
    assert.ok(endless.destroyed);
    assert.deepEqual(fs.readdirSync(tmpDir), []);
  });

  it('stops a gzip bomb at the cap, pulling only a little of the source', async () => {
    // 10 GB of zeros, gzipped lazily: finishing would take minutes, so passing proves the input stops.
    let zeroBytes = 0;
    const zeros = Readable.from(
      (function* () {
        const block = Buffer.alloc(MB);
        for (let i = 0; i < 10 * 1024; i++) yield ((zeroBytes += MB), block);
      })(),
    );
    const bomb = zeros.pipe(zlib.createGzip());
    const result = await decompressed(bomb, { maxBytes: MB, tmpDir });
    let received = 0;
    await assert.rejects(
      (async () => {
        for await (const chunk of result.stream) received += (chunk as Buffer).length;
      })(),
      uploadError(413, 'file_too_large', 'File exceeds the maximum size of 1 MB after decompression'),
    );
    assert.ok(received <= MB, `passed on ${received} bytes`);
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(bomb.destroyed, 'the source is torn down');
    assert.ok(zeroBytes < 100 * MB, `the bomb was inflated from ${zeroBytes} bytes of zeros`);
    zeros.destroy();
  });

  it('refuses a compressed source at the first byte decoded past the expansion ratio', async () => {
    const gz = zlib.gzipSync(Buffer.alloc(8 * MB, 0x0a));
    const maxRatio = 100;
    const result = await decompressed(chunked(gz), {
      maxBytes: 64 * MB,
      expansion: { maxRatio, sourceBytes: gz.length },
      tmpDir,
    });
    let received = 0;
    await assert.rejects(
      (async () => {
        for await (const chunk of result.stream) received += (chunk as Buffer).length;
      })(),
      uploadError(413, 'compression_ratio_exceeded', 'File decompresses to more than 100 times its size'),
    );
    assert.ok(received <= maxRatio * gz.length, `passed on ${received} bytes`);
    // An honest file of the same kind passes.
    const { out } = await roundTrip(zlib.gzipSync(content), 64 * MB);
    assert.ok(out.equals(content));
  });

  it('refuses a zip whose file declares more than the expansion ratio allows, before streaming it', async () => {
    const zip = makeZip(tmpDir, { 'newlines.jsonl': '\n'.repeat(MB) });
    await assert.rejects(
      decompressed(chunked(zip), {
        maxBytes: 64 * MB,
        expansion: { maxRatio: 100, sourceBytes: zip.length },
        tmpDir,
      }),
      uploadError(413, 'compression_ratio_exceeded', 'File decompresses to more than 100 times its size'),
    );
    assert.deepEqual(fs.readdirSync(tmpDir), []);
  });

  it('stops a bzip2 bomb at the cap mid-block, decoding no byte past it', async function () {
    if (!has('bzip2')) this.skip();
    // 64 MB of newlines in about a hundred bytes: a handful of blocks, each decoding to tens of megabytes.
    const bomb = execFileSync('bzip2', ['-c'], { input: Buffer.alloc(64 * MB, 0x0a), maxBuffer: MB });
    let decodedBytes = 0;
    const decode = bzip2.decompress;
    bzip2.decompress = function (bits, out, ...rest) {
      return decode.call(this, bits, (byte) => (decodedBytes++, out(byte)), ...rest);
    };
    try {
      await assert.rejects(
        roundTrip(bomb, MB),
        uploadError(413, 'file_too_large', 'File exceeds the maximum size of 1 MB after decompression'),
      );
    } finally {
      bzip2.decompress = decode;
    }
    assert.ok(decodedBytes <= MB + 1, `decoded ${decodedBytes} bytes`);
  });

  it('stops the 50 MB-of-zeros gzip at a 1 MB cap', async () => {
    const gz = await collect(Readable.from([Buffer.alloc(50 * MB)]).pipe(zlib.createGzip()));
    await assert.rejects(
      roundTrip(gz, MB),
      uploadError(413, 'file_too_large', 'File exceeds the maximum size of 1 MB after decompression'),
    );
  });

  it('caps plain files too', async () => {
    await assert.rejects(
      roundTrip(Buffer.alloc(MB + 1, 0x61), MB),
      uploadError(413, 'file_too_large', 'File exceeds the maximum size of 1 MB'),
    );
    const { out } = await roundTrip(Buffer.alloc(MB, 0x61), MB);
    assert.equal(out.length, MB);
  });

  it('rejects corrupt and truncated gzip with a 400', async () => {
    const gz = zlib.gzipSync(content);
    const corrupt = Buffer.from(gz);
    corrupt.fill(0xff, 10, 60);
    await assert.rejects(
      roundTrip(corrupt),
      uploadError(400, 'invalid_file', /^could not decompress the gzip upload: \S/),
    );
    await assert.rejects(
      roundTrip(gz.subarray(0, gz.length >> 1)),
      uploadError(400, 'invalid_file', 'could not decompress the gzip upload: unexpected end of file'),
    );
  });

  it('propagates the source error itself, not a decode error', async () => {
    const aborted = new Error('client aborted');
    for (const head of [zlib.gzipSync(content).subarray(0, 100), content.subarray(0, 100)]) {
      const source = new Readable({ read() {} });
      source.push(head);
      const result = await decompressed(source, { maxBytes: MB, tmpDir });
      setImmediate(() => source.destroy(aborted));
      await assert.rejects(collect(result.stream), (err) => err === aborted);
    }
    const early = new Readable({ read() {} });
    setImmediate(() => early.destroy(aborted));
    await assert.rejects(decompressed(early, { maxBytes: MB, tmpDir }), (err) => err === aborted);
  });
});
