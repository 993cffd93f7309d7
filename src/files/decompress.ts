import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import yauzl from 'yauzl';
import { bunzip2 } from './bunzip2';
import { UploadError, formatSize } from './upload-error';

export type UploadFormat = 'plain' | 'gzip' | 'zip' | 'bz2';

export interface DecodeLimits {
  /** Decoded bytes allowed. */
  maxBytes: number;
  /** Decoded bytes allowed per byte of a compressed source, when its size is known. */
  expansion?: { maxRatio: number; sourceBytes: number };
  /** Where a zip is spooled. */
  tmpDir: string;
}

export interface Decompressed {
  /**
   * The decompressed bytes, failing with a 413 UploadError at the first byte past `maxBytes` or past the
   * expansion ratio. Its end also ends the source.
   */
  stream: Readable;
  format: UploadFormat;
  /** Removes the temporary file a zip needs; safe to call more than once. */
  cleanup: () => Promise<void>;
}

const noCleanup = async (): Promise<void> => {};

/**
 * Decodes an upload by its magic bytes (a file name is only the client's word), streaming throughout:
 * only a zip is spooled to `tmpDir`, since its directory sits at its end.
 */
export async function decompressed(source: Readable, opts: DecodeLimits): Promise<Decompressed> {
  const { head, rest, isSourceError } = await peek(source, 4);
  const format = detect(head);
  const limit = formatSize(opts.maxBytes);
  const tooLarge = (message: string) => () => new UploadError(413, 'file_too_large', message);
  if (format === 'plain') {
    const stream = output(
      source,
      capped(rest, opts.maxBytes, tooLarge(`File exceeds the maximum size of ${limit}`)),
    );
    return { stream, format, cleanup: noCleanup };
  }

  // The source's own failures (a client abort) and size limits pass through; anything else a decoder
  // throws means the upload is corrupt. System errors (disk full) stay internal.
  const asUploadError = (err: unknown): unknown =>
    isSourceError(err) || err instanceof UploadError || !(err instanceof Error) || 'syscall' in err
      ? err
      : new UploadError(
          400,
          'invalid_file',
          // unbzip2-stream's messages are jokes ("moo i'm a cow"), not reasons.
          `could not decompress the ${format} upload: ${format === 'bz2' ? 'corrupt or truncated data' : err.message}`,
        );
  // Compression never makes data meaningfully larger (deflate's worst case adds far less than 1 %), so a
  // bigger input is refused before it fills the disk or keeps a decoder busy.
  const input = capped(
    rest,
    Math.ceil(opts.maxBytes * 1.01) + 1024 * 1024,
    tooLarge(`File exceeds the maximum size of ${limit}`),
  );
  // A small source that decodes to far more is refused once its output passes the ratio, whatever the size limit.
  const ratio = opts.expansion;
  const byRatio = ratio ? ratio.maxRatio * ratio.sourceBytes : Infinity;
  const decodedLimit = Math.min(opts.maxBytes, byRatio);
  const overLimit =
    ratio && byRatio < opts.maxBytes
      ? () =>
          new UploadError(
            413,
            'compression_ratio_exceeded',
            `File decompresses to more than ${ratio.maxRatio} times its size`,
          )
      : tooLarge(`File exceeds the maximum size of ${limit} after decompression`);

  let decoded: AsyncIterable<Buffer>;
  let cleanup = noCleanup;
  if (format === 'zip') {
    // A failed spool may leave the source mid-stream, and nothing else will read it.
    ({ entry: decoded, cleanup } = await openZip(
      input,
      opts.tmpDir,
      decodedLimit,
      overLimit,
      asUploadError,
    ).catch((err: unknown) => {
      source.destroy();
      throw err;
    }));
  } else if (format === 'gzip') {
    const decoder = zlib.createGunzip();
    // Either side's failure destroys the decoder, which is where the reader sees it.
    pipeline(input, decoder).catch(() => {});
    decoded = decoder;
  } else {
    decoded = bunzip2(input, decodedLimit, overLimit);
  }
  return {
    stream: output(source, capped(mapErrors(decoded, asUploadError), decodedLimit, overLimit)),
    format,
    cleanup,
  };
}

function detect(head: Buffer): UploadFormat {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  // A local file header, or the end-of-directory record that is all an empty archive holds.
  const word = head.length >= 4 ? head.readUInt32BE(0) : 0;
  if (word === 0x504b0304 || word === 0x504b0506) return 'zip';
  if (head.toString('latin1', 0, 3) === 'BZh' && head[3] >= 0x31 && head[3] <= 0x39) return 'bz2';
  return 'plain';
}

/** Reads the first `n` bytes to sniff, then replays them ahead of the rest, so nothing is lost. */
async function peek(source: Readable, n: number) {
  const it = (source as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let bytes = 0;
  let done = false;
  while (bytes < n && !done) {
    const r = await it.next();
    if (r.done) done = true;
    else {
      head.push(r.value);
      bytes += r.value.length;
    }
  }
  let failure: unknown;
  async function* rest(): AsyncGenerator<Buffer> {
    yield* head;
    try {
      for (let r = done ? null : await it.next(); r && !r.done; r = await it.next()) yield r.value;
    } catch (err) {
      failure = err;
      throw err;
    }
  }
  return { head: Buffer.concat(head), rest: rest(), isSourceError: (err: unknown) => err === failure };
}

/** Passes `chunks` on until they total more than `limit` bytes, then fails and stops pulling. */
async function* capped(
  chunks: AsyncIterable<Buffer>,
  limit: number,
  overLimit: () => UploadError,
): AsyncGenerator<Buffer> {
  let total = 0;
  for await (const chunk of chunks) {
    total += chunk.length;
    if (total > limit) throw overLimit();
    yield chunk;
  }
}

async function* mapErrors(
  chunks: AsyncIterable<Buffer>,
  map: (err: unknown) => unknown,
): AsyncGenerator<Buffer> {
  try {
    yield* chunks;
  } catch (err) {
    throw map(err);
  }
}

/** A byte stream over `chunks` that takes the source down with it, however it ends. */
function output(source: Readable, chunks: AsyncIterable<Buffer>): Readable {
  const stream = Readable.from(chunks, { objectMode: false });
  stream.once('close', () => source.destroy());
  return stream;
}

/** Spools a zip to disk (its directory is at the end) and opens its one file. */
async function openZip(
  input: AsyncIterable<Buffer>,
  tmpDir: string,
  maxBytes: number,
  overLimit: () => UploadError,
  asUploadError: (err: unknown) => unknown,
): Promise<{ entry: Readable; cleanup: () => Promise<void> }> {
  await fs.promises.mkdir(tmpDir, { recursive: true });
  const file = path.join(tmpDir, `upload-${randomUUID()}.zip`);
  let zip: yauzl.ZipFile | undefined;
  const cleanup = async () => {
    zip?.close();
    await fs.promises.rm(file, { force: true });
  };
  try {
    await pipeline(input, fs.createWriteStream(file, { flags: 'wx', mode: 0o600 }));
    const opened = (zip = await yauzl.openPromise(file, { lazyEntries: true, autoClose: false }));
    const only = await onlyFile(opened);
    if (only.uncompressedSize > maxBytes) throw overLimit();
    const entry = await opened.openReadStreamPromise(only);
    entry.once('close', () => opened.close());
    return { entry, cleanup };
  } catch (err) {
    await cleanup();
    throw asUploadError(err);
  }
}

function onlyFile(zip: yauzl.ZipFile): Promise<yauzl.Entry> {
  const notOne = () => new UploadError(400, 'invalid_file', 'zip archive must contain exactly one file');
  return new Promise((resolve, reject) => {
    const files: yauzl.Entry[] = [];
    zip.on('entry', (entry: yauzl.Entry) => {
      // macOS's Finder adds __MACOSX/ metadata to every archive it makes.
      if (!entry.fileName.endsWith('/') && !entry.fileName.startsWith('__MACOSX/')) files.push(entry);
      if (files.length > 1) reject(notOne());
      else zip.readEntry();
    });
    zip.on('end', () => (files.length === 1 ? resolve(files[0]) : reject(notOne())));
    zip.on('error', reject);
    zip.readEntry();
  });
}
