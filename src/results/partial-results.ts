import type { ResultIndex } from '../db/entities';
import { readLines } from '../files/line-reader';
import type { BlobStore } from '../storage/blob-store';
import { readSegments, segmentsByChunk, type PartKind, type Segment } from './chunk-segments';
import { InvalidCursor, type ChunkPosition, type PartialCursor } from './partial-cursor';

export interface PageLimits {
  lines: number;
  bytes: number;
}

export interface PartialPage {
  /** Result lines without their newlines. */
  lines: Buffer[];
  next: PartialCursor;
  /** False once the batch is finished and every line of this kind was read. */
  hasMore: boolean;
}

/** Gathers a page's lines: at most `lines` of them and about `bytes` (always at least one line). */
class Page {
  readonly lines: Buffer[] = [];
  private bytes = 0;

  constructor(private readonly limits: PageLimits) {}

  get full(): boolean {
    return this.lines.length >= this.limits.lines || this.bytes >= this.limits.bytes;
  }

  add(line: Buffer): void {
    this.lines.push(line);
    this.bytes += line.length + 1;
  }
}

/** The random tag that names the attempt that wrote a segment (see chunk-segments.ts). */
const tagOf = (s: Segment) => s.key.slice(s.key.lastIndexOf('.') + 1);

/**
 * The lines of a running batch after `cursor`, from its chunks' segments, chunk by chunk. A chunk written by one
 * attempt holds each custom_id once, so its position is a segment and a line in it, and only segments after it
 * are read. A chunk resumed by another attempt may hold a custom_id twice: it is read from its start with the
 * same rule as finalization (the first stored answer wins), skipping the lines already read, so the pages never
 * repeat a line and hold exactly what the result file will.
 */
export async function readRunning(
  parts: BlobStore,
  batchId: string,
  cursor: Extract<PartialCursor, { phase: 'running' }>,
  limits: PageLimits,
): Promise<PartialPage> {
  const { kind } = cursor;
  const page = new Page(limits);
  const chunks = new Map(cursor.chunks);
  for await (const { chunk, segments } of segmentsByChunk(parts, batchId)) {
    if (page.full) break;
    const position = { ...(chunks.get(chunk) ?? { segments: 0, lines: 0, read: 0 }) };
    if (new Set(segments.map(tagOf)).size <= 1) {
      await readOneAttempt(parts, segments, kind, position, page);
    } else {
      await readResumed(parts, segments, kind, position, page);
    }
    chunks.set(chunk, position);
  }
  return { lines: page.lines, next: { kind, phase: 'running', chunks }, hasMore: true };
}

async function readOneAttempt(
  parts: BlobStore,
  segments: Segment[],
  kind: PartKind,
  position: ChunkPosition,
  page: Page,
): Promise<void> {
  const own = segments.filter((s) => s.kind === kind);
  while (position.segments < own.length) {
    let seen = 0;
    for await (const { line } of readLines(await parts.get(own[position.segments].key))) {
      if (line.length === 0 || seen++ < position.lines) continue;
      if (page.full) return;
      page.add(line);
      position.lines++;
      position.read++;
    }
    position.segments++;
    position.lines = 0;
  }
}

async function readResumed(
  parts: BlobStore,
  segments: Segment[],
  kind: PartKind,
  position: ChunkPosition,
  page: Page,
): Promise<void> {
  // Segment positions mean nothing here: the count of lines read is the position.
  position.segments = 0;
  position.lines = 0;
  let seen = 0;
  for await (const line of readSegments(parts, segments)) {
    if (line.kind !== kind || seen++ < position.read) continue;
    if (page.full) return;
    page.add(line.line);
    position.read++;
  }
}

/**
 * The lines of a finished batch's result file after `cursor`. A byte offset continues where it points. A cursor
 * from the running batch skips, in each chunk's section of the file, the lines it already read there: the file
 * holds each chunk's lines in the order partial reads gave them, followed by its unanswered requests.
 */
export async function readFinished(
  blobs: BlobStore,
  fileId: string | null,
  index: ResultIndex | null,
  cursor: PartialCursor,
  limits: PageLimits,
): Promise<PartialPage> {
  const { kind } = cursor;
  const page = new Page(limits);
  const size = fileId === null ? 0 : ((await blobs.size(fileId)) ?? 0);
  const start = cursor.phase === 'file' ? Math.min(cursor.offset, size) : 0;
  let offset = start;
  const done = (): PartialPage => ({
    lines: page.lines,
    next: { kind, phase: 'file', offset },
    hasMore: offset < size,
  });
  if (fileId === null || offset >= size) return done();

  const sections = cursor.phase === 'running' ? sectionsToSkip(cursor, index) : null;
  for await (const { line, end } of readLines(await blobs.get(fileId, { start, end: size }))) {
    if (line.length > 0 && !sections?.skip()) {
      if (page.full) break;
      page.add(line);
    }
    offset = start + end;
  }
  return done();
}

/** Walks the file's chunk sections and says of each line whether a partial read gave it already. */
function sectionsToSkip(cursor: Extract<PartialCursor, { phase: 'running' }>, index: ResultIndex | null) {
  const lengths = index?.[cursor.kind];
  if (!lengths) {
    // Finalized without an index (before partial results existed): only a reader who read nothing can go on.
    if ([...cursor.chunks.values()].some((p) => p.read > 0)) throw new InvalidCursor('stale');
    return null;
  }
  let chunk = 0;
  let line = 0;
  return {
    skip(): boolean {
      while (chunk < lengths.length && line >= lengths[chunk]) {
        chunk++;
        line = 0;
      }
      return line++ < (cursor.chunks.get(chunk)?.read ?? 0);
    },
  };
}
