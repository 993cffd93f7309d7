import { isUtf8 } from 'node:buffer';
import { Transform, type TransformCallback } from 'node:stream';
import { withoutBom } from './line-reader';
import { UploadError, formatSize } from './upload-error';

export interface JsonlCheckOptions {
  /** Every non-blank line must be a JSON object (batch input) and at least one must exist. */
  requireJsonObjects: boolean;
  maxLineBytes: number;
  /** Lines allowed, blank ones included: every later reader of the file pays for each. Default unlimited. */
  maxLines?: number;
  /** Reject a file without content: no non-blank line when JSON is required, else zero bytes. Default true. */
  rejectEmpty?: boolean;
}

const NL = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const TAB = 0x09;
// A BOM and a CR may ride on a line without counting towards its length.
const SLACK = 4;

/**
 * Passes bytes through unchanged while checking, line by line, that they are UTF-8 text without NULs or
 * overlong lines (and JSON objects, if asked), and that there are at most `maxLines` lines. Fails with an
 * UploadError at the first bad line. Only the unfinished current line is held, so memory stays bounded by
 * `maxLineBytes`. Runs of blank lines are counted in one pass over their bytes, so a file of newlines costs
 * no more per byte than a file of requests.
 */
export class JsonlCheck extends Transform {
  private readonly opts: Required<JsonlCheckOptions>;
  private partial: Buffer[] = [];
  private partialBytes = 0;
  private lineNumber = 0;
  private nonBlank = 0;
  private total = 0;

  constructor(opts: JsonlCheckOptions) {
    super();
    this.opts = { rejectEmpty: true, maxLines: Infinity, ...opts };
  }

  /** Non-blank lines seen so far. */
  get lines(): number {
    return this.nonBlank;
  }

  /** Bytes passed through so far. */
  get bytes(): number {
    return this.total;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    try {
      this.scan(chunk);
      done(null, chunk);
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      if (this.partialBytes > 0) this.checkLine(Buffer.concat(this.partial, this.partialBytes));
      const empty = this.opts.requireJsonObjects ? this.nonBlank === 0 : this.total === 0;
      if (this.opts.rejectEmpty && empty) throw new UploadError(400, 'empty_file', 'The file is empty');
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  private scan(chunk: Buffer): void {
    this.total += chunk.length;
    let start = this.partialBytes > 0 ? 0 : this.skipBlankLines(chunk, 0);
    for (let nl = chunk.indexOf(NL, start); nl !== -1; nl = chunk.indexOf(NL, start)) {
      let raw = chunk.subarray(start, nl);
      if (this.partialBytes > 0) {
        raw = Buffer.concat([...this.partial, raw], this.partialBytes + raw.length);
        this.partial = [];
        this.partialBytes = 0;
      }
      this.checkLine(raw);
      start = this.skipBlankLines(chunk, nl + 1);
    }
    if (start < chunk.length) {
      // The first byte of a line is enough to know it exists.
      if (this.partialBytes === 0) this.checkLineCount(this.lineNumber + 1);
      this.partial.push(chunk.subarray(start));
      this.partialBytes += chunk.length - start;
      if (this.partialBytes > this.opts.maxLineBytes + SLACK) throw this.tooLong(this.lineNumber + 1);
    }
  }

  /**
   * Counts the whole blank lines starting at `from` without a call or an allocation per line, and returns
   * where the first other line starts. A blank line too long to pass is left to checkLine, which names it.
   */
  private skipBlankLines(chunk: Buffer, from: number): number {
    let lineStart = from;
    let lines = 0;
    for (let i = from; i < chunk.length; i++) {
      const byte = chunk[i];
      if (byte === NL) {
        if (i - lineStart > this.opts.maxLineBytes) break;
        lines++;
        lineStart = i + 1;
      } else if (byte !== SPACE && byte !== TAB && byte !== CR) break;
    }
    if (lines > 0) {
      this.checkLineCount(this.lineNumber + lines);
      this.lineNumber += lines;
    }
    return lineStart;
  }

  /** Fails once a file is certain to have more than `maxLines` lines. */
  private checkLineCount(lines: number): void {
    if (lines > this.opts.maxLines) {
      throw new UploadError(
        400,
        'too_many_lines',
        `File has more than ${this.opts.maxLines} lines (blank lines included)`,
      );
    }
  }

  private checkLine(raw: Buffer): void {
    const n = ++this.lineNumber;
    this.checkLineCount(n);
    let line = raw.length > 0 && raw[raw.length - 1] === CR ? raw.subarray(0, -1) : raw;
    if (n === 1) line = withoutBom(line);
    if (line.length > this.opts.maxLineBytes) throw this.tooLong(n);
    if (line.indexOf(0) !== -1)
      throw new UploadError(400, 'invalid_file', `File contains a NUL byte (line ${n})`);
    // Lines split at 0x0a can't cut a UTF-8 sequence, so checking each on its own checks the whole.
    if (!isUtf8(line)) throw new UploadError(400, 'invalid_encoding', `File is not valid UTF-8 (line ${n})`);
    if (isBlank(line)) return;
    this.nonBlank++;
    if (!this.opts.requireJsonObjects) return;
    if (nestsDeeperThan(line, MAX_JSON_DEPTH)) {
      throw invalidJsonl(`Line ${n} nests JSON deeper than ${MAX_JSON_DEPTH} levels`);
    }
    let value: unknown;
    try {
      value = JSON.parse(line.toString('utf8'));
    } catch (err) {
      throw invalidJsonl(`Line ${n} is not valid JSON: ${(err as Error).message.slice(0, 200)}`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw invalidJsonl(`Line ${n} is not a JSON object`);
    }
  }

  private tooLong(n: number): UploadError {
    const limit = formatSize(this.opts.maxLineBytes);
    return new UploadError(400, 'line_too_long', `Line ${n} exceeds the maximum line length of ${limit}`);
  }
}

const invalidJsonl = (message: string) => new UploadError(400, 'invalid_jsonl', message);

/**
 * No real request nests this deep, and a line that does could exhaust the stack of JSON.parse or
 * JSON.stringify later in the worker; checked on the bytes, before parsing.
 */
export const MAX_JSON_DEPTH = 128;

function nestsDeeperThan(line: Buffer, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < line.length; i++) {
    const b = line[i];
    if (inString) {
      if (b === 0x5c)
        i++; // skip the escaped character
      else if (b === 0x22) inString = false;
    } else if (b === 0x22) inString = true;
    else if (b === 0x7b || b === 0x5b) {
      if (++depth > limit) return true;
    } else if (b === 0x7d || b === 0x5d) depth--;
  }
  return false;
}

/** Only JSON's own whitespace counts, so a blank line is exactly one JSON.parse would find empty. */
function isBlank(line: Buffer): boolean {
  for (let i = 0; i < line.length; i++) {
    const byte = line[i];
    if (byte !== 0x20 && byte !== 0x09 && byte !== CR) return false;
  }
  return true;
}
