import type { Readable } from 'node:stream';

export interface Line {
  /** The line without its "\n" or "\r\n"; may share memory with the stream's chunk, so don't mutate it. */
  line: Buffer;
  /** Byte offset of the line's first byte. */
  start: number;
  /** Byte offset just past its newline (or the end of the stream). */
  end: number;
  /** 1-based line number. */
  number: number;
}

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/**
 * A UTF-8 byte-order mark at the start of a file is not content: the one rule every reader of JSONL here
 * applies (the upload check, validation, the chunk runner, finalization), as most JSONL readers do.
 */
export const withoutBom = (firstLine: Buffer): Buffer =>
  firstLine.subarray(0, 3).equals(BOM) ? firstLine.subarray(3) : firstLine;

/**
 * Streams `source` line by line; a line spanning chunks is joined once, when its newline arrives. A BOM on the
 * stream's first line is dropped (only a file's first line can have one: any other line starting with U+FEFF is
 * not JSON and fails validation).
 */
export async function* readLines(source: Readable): AsyncGenerator<Line> {
  let partial: Buffer[] = [];
  let partialBytes = 0;
  let offset = 0;
  let number = 0;
  const emit = (raw: Buffer, newline: number): Line => {
    const start = offset;
    offset += raw.length + newline;
    const line = newline && raw.length > 0 && raw[raw.length - 1] === 0x0d ? raw.subarray(0, -1) : raw;
    return { line: number === 0 ? withoutBom(line) : line, start, end: offset, number: ++number };
  };
  for await (const chunk of source as AsyncIterable<Buffer>) {
    let start = 0;
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      let raw = chunk.subarray(start, nl);
      if (partialBytes > 0) {
        raw = Buffer.concat([...partial, raw], partialBytes + raw.length);
        partial = [];
        partialBytes = 0;
      }
      yield emit(raw, 1);
      start = nl + 1;
    }
    if (start < chunk.length) {
      partial.push(chunk.subarray(start));
      partialBytes += chunk.length - start;
    }
  }
  if (partialBytes > 0) yield emit(Buffer.concat(partial, partialBytes), 0);
}
