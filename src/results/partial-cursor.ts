import type { PartKind } from './chunk-segments';

/**
 * Where a reader of a batch's partial results stands, as an opaque token (`x-next-after`).
 *
 * While the batch runs, its lines are in its chunks' segments, written concurrently, so one position cannot say
 * what was read: the cursor holds one per chunk. After finalization the segments are gone and the lines are in the
 * result file, so the cursor becomes a byte offset in that file. A per-chunk cursor carries over to the file through
 * the count of lines read from each chunk (the file holds each chunk's lines in the same order, see
 * partial-results.ts).
 */
export interface ChunkPosition {
  /** Segments of this kind read whole, in key order (used while the chunk was written by a single attempt). */
  segments: number;
  /** Lines read from the next segment. */
  lines: number;
  /** Every line read from the chunk: what the result file's section of this chunk starts with. */
  read: number;
}

/**
 * In the result file: a byte offset, the chunk section it falls in and the lines of that section before it, and
 * what a reader of the running batch had already read of each chunk from that section on (lines to skip there).
 */
export interface FilePosition {
  offset: number;
  section: number;
  line: number;
  skips: Map<number, number>;
}

export type PartialCursor =
  | { kind: PartKind; phase: 'running'; chunks: Map<number, ChunkPosition> }
  | ({ kind: PartKind; phase: 'file' } & FilePosition);

const VERSION = 1;
const KIND_CODE: Record<PartKind, number> = { out: 0, err: 1 };
const KIND_OF = ['out', 'err'] as const;

export const startCursor = (kind: PartKind): PartialCursor => ({ kind, phase: 'running', chunks: new Map() });

function putVarint(out: number[], n: number): void {
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
}

export function encodeCursor(cursor: PartialCursor): string {
  const out: number[] = [VERSION, KIND_CODE[cursor.kind]];
  if (cursor.phase === 'file') {
    out.push(1);
    putVarint(out, cursor.offset);
    putVarint(out, cursor.section);
    putVarint(out, cursor.line);
    let previous = -1;
    for (const [chunk, read] of [...cursor.skips].sort((a, b) => a[0] - b[0])) {
      if (read === 0) continue;
      putVarint(out, chunk - previous - 1);
      putVarint(out, read);
      previous = chunk;
    }
  } else {
    out.push(0);
    let previous = -1;
    for (const [chunk, p] of [...cursor.chunks].sort((a, b) => a[0] - b[0])) {
      if (p.read === 0 && p.segments === 0 && p.lines === 0) continue;
      putVarint(out, chunk - previous - 1);
      putVarint(out, p.segments);
      putVarint(out, p.lines);
      putVarint(out, p.read);
      previous = chunk;
    }
  }
  return Buffer.from(out).toString('base64url');
}

export class InvalidCursor extends Error {}

/** Reads a token made by encodeCursor; throws InvalidCursor for anything else, or for a cursor of the other kind. */
export function decodeCursor(token: string, kind: PartKind): PartialCursor {
  if (!/^[A-Za-z0-9_-]{1,20000}$/.test(token)) throw new InvalidCursor('malformed');
  const bytes = Buffer.from(token, 'base64url');
  let at = 0;
  const varint = (): number => {
    let n = 0;
    let scale = 1;
    for (;;) {
      if (at >= bytes.length || scale > 2 ** 49) throw new InvalidCursor('malformed');
      const b = bytes[at++];
      n += (b & 0x7f) * scale;
      if (b < 0x80) return n;
      scale *= 0x80;
    }
  };
  if (bytes.length < 3 || bytes[0] !== VERSION || bytes[1] > 1 || bytes[2] > 1)
    throw new InvalidCursor('malformed');
  if (KIND_OF[bytes[1]] !== kind) throw new InvalidCursor('kind');
  at = 3;
  if (bytes[2] === 1) {
    const offset = varint();
    const section = varint();
    const line = varint();
    const skips = new Map<number, number>();
    for (let previous = -1; at < bytes.length;) {
      const chunk = previous + 1 + varint();
      skips.set(chunk, varint());
      previous = chunk;
    }
    return { kind, phase: 'file', offset, section, line, skips };
  }
  // The token's length (at most 20,000 characters) bounds the entries, and so what decoding costs.
  const chunks = new Map<number, ChunkPosition>();
  let previous = -1;
  while (at < bytes.length) {
    const chunk = previous + 1 + varint();
    chunks.set(chunk, { segments: varint(), lines: varint(), read: varint() });
    previous = chunk;
  }
  return { kind, phase: 'running', chunks };
}
