import type { ResultIndex } from '../db/entities';
import { readLines } from '../files/line-reader';
import { BlobNotFoundError, type BlobStore } from '../storage/blob-store';
import { readSegments, segmentsByChunk, type PartKind, type Segment } from './chunk-segments';
import { InvalidCursor, type ChunkPosition, type FilePosition, type PartialCursor } from './partial-cursor';

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
 * same rule as finalization (the answer in the first segment in key order wins), skipping the lines already read,
 * so the pages never repeat a line and hold exactly what the result file will. (Unless two attempts wrote at once,
 * a worker cut off from Temporal still running beside its replacement: a segment of the late one may then sort
 * before lines already given, and the reader may see a line twice or miss one.)
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
 * The lines of a finished batch's result file after `cursor`. The file holds each chunk's lines in the order
 * partial reads gave them (segments in key order, the first answer of a custom_id winning), then the chunk's
 * unanswered requests; `index` gives each chunk's line count. A cursor from the running batch becomes a position at
 * the file's start that skips, in each chunk's section, the lines already read there; the skips of the sections
 * not yet passed travel on in the cursor, so a page may end anywhere.
 */
export async function readFinished(
  blobs: BlobStore,
  fileId: string | null,
  index: ResultIndex | null,
  cursor: PartialCursor,
  limits: PageLimits,
): Promise<PartialPage> {
  const { kind } = cursor;
  const from: FilePosition =
    cursor.phase === 'file'
      ? cursor
      : {
          offset: 0,
          section: 0,
          line: 0,
          skips: new Map([...cursor.chunks].map(([chunk, p]) => [chunk, p.read])),
        };
  const lengths = index?.[kind];
  // Finalized without an index (before partial results existed): only a reader who read nothing can go on.
  if (!lengths && [...from.skips.values()].some((n) => n > 0)) throw new InvalidCursor('stale');
  const page = new Page(limits);
  const size = fileId === null ? 0 : ((await blobs.size(fileId)) ?? 0);
  const start = Math.min(from.offset, size);
  let offset = start;
  let section = from.section;
  let line = from.line;
  const done = (hasMore: boolean): PartialPage => {
    const skips = new Map([...from.skips].filter(([chunk]) => chunk >= section));
    return { lines: page.lines, next: { kind, phase: 'file', offset, section, line, skips }, hasMore };
  };
  if (fileId === null || offset >= size) return done(false);
  let source;
  try {
    source = await blobs.get(fileId, { start, end: size });
  } catch (err) {
    if (err instanceof BlobNotFoundError) return done(false); // deleted with its batch meanwhile
    throw err;
  }
  for await (const { line: text, end } of readLines(source)) {
    if (text.length > 0) {
      while (lengths && section < lengths.length && line >= lengths[section]) {
        section++;
        line = 0;
      }
      const seen = line < (from.skips.get(section) ?? 0);
      if (!seen && page.full) break;
      line++;
      if (!seen) page.add(text);
    }
    offset = start + end;
  }
  return done(offset < size);
}
