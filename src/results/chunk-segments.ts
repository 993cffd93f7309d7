import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { readLines } from '../files/line-reader';
import type { BlobStore } from '../storage/blob-store';
import { addUsage, usageOf, zeroUsage, type Usage } from './result-lines';

/**
 * A chunk's checkpoint: its finished lines, stored as segments in the parts store (a folder, or a bucket prefix
 * that every worker host reaches). Each segment is one whole write of the lines answered in the last second, so
 * no segment is ever half-written, and a worker on another host resumes the chunk from the segments alone.
 *
 * Keys are `<batchId>.<chunk>.<seq>.<kind>.<tag>`: sorting keys sorts a chunk's segments in write order, and the
 * random tag keeps two attempts that overlap (a worker cut off from Temporal but still running) from overwriting
 * each other's segments.
 */
export type PartKind = 'out' | 'err';
const KINDS: readonly PartKind[] = ['out', 'err'];

/** A segment is written every CHECKPOINT_FLUSH_MS while lines arrive, or as soon as it holds this many lines. */
const MAX_SEGMENT_LINES = 500;

const pad = (n: number, width: number) => String(n).padStart(width, '0');
/** Every segment of a batch starts with this. */
export const batchSegmentsPrefix = (batchId: string) => `${batchId}.`;
const chunkPrefix = (batchId: string, index: number) => `${batchId}.${pad(index, 6)}.`;
const SEGMENT = /^(\d{6})\.(\d{8})\.(out|err)\.[0-9a-f]+$/;

export interface Segment {
  key: string;
  chunk: number;
  seq: number;
  kind: PartKind;
}

/** The segments under `prefix` (a batch's or one chunk's), in key order: chunk by chunk, each in write order. */
async function* listSegments(parts: BlobStore, batchId: string, prefix: string): AsyncGenerator<Segment> {
  const base = batchSegmentsPrefix(batchId).length;
  for await (const { key } of parts.list(prefix)) {
    const m = SEGMENT.exec(key.slice(base));
    if (m) yield { key, chunk: Number(m[1]), seq: Number(m[2]), kind: m[3] as PartKind };
  }
}

/**
 * A batch's segments grouped by chunk, in chunk order, from one listing of the whole batch: finalization reads
 * every chunk, and a listing per chunk would cost a request per chunk.
 */
export async function* segmentsByChunk(
  parts: BlobStore,
  batchId: string,
): AsyncGenerator<{ chunk: number; segments: Segment[] }> {
  let current = null as { chunk: number; segments: Segment[] } | null;
  for await (const segment of listSegments(parts, batchId, batchSegmentsPrefix(batchId))) {
    if (current?.chunk !== segment.chunk) {
      if (current) yield current;
      current = { chunk: segment.chunk, segments: [] };
    }
    current.segments.push(segment);
  }
  if (current) yield current;
}

/** One finished request of a chunk. */
export interface PartLine {
  kind: PartKind;
  /** The line without its newline. */
  line: Buffer;
  customId: string;
  /** Token usage of a success; none in the error file. */
  usage?: Usage;
}

/**
 * Streams a chunk's finished lines in write order, each custom_id once: two overlapping attempts may both have
 * answered a request, and the answer in the first segment in key order (seq, then kind, then tag) wins.
 */
export async function* readSegments(parts: BlobStore, segments: Segment[]): AsyncGenerator<PartLine> {
  const seen = new Set<string>();
  for (const { key, kind } of segments) {
    for await (const { line } of readLines(await parts.get(key))) {
      if (line.length === 0) continue;
      const parsed = JSON.parse(line.toString('utf8')) as {
        custom_id: string;
        response?: { body?: unknown } | null;
      };
      if (seen.has(parsed.custom_id)) continue;
      seen.add(parsed.custom_id);
      yield {
        kind,
        line,
        customId: parsed.custom_id,
        usage: kind === 'out' ? usageOf(parsed.response?.body) : undefined,
      };
    }
  }
}

/** What a chunk's segments hold: every request in them is finished. */
export class PartTally {
  /** custom_ids already answered, so a resumed chunk skips them. */
  readonly done = new Set<string>();
  completed = 0;
  failed = 0;
  readonly usage = zeroUsage();

  /** Counts a finished request; a success brings its token usage. */
  add(kind: PartKind, customId: string, usage?: Usage): void {
    this.done.add(customId);
    if (kind === 'err') this.failed++;
    else this.completed++;
    if (usage) addUsage(this.usage, usage);
  }
}

/** Tallies a chunk's segments and opens a writer that carries on after the last of them. */
export async function resumeChunk(
  parts: BlobStore,
  batchId: string,
  index: number,
  flushMs: number,
): Promise<{ tally: PartTally; writer: SegmentWriter }> {
  const segments: Segment[] = [];
  for await (const s of listSegments(parts, batchId, chunkPrefix(batchId, index))) segments.push(s);
  const tally = new PartTally();
  for await (const { kind, customId, usage } of readSegments(parts, segments))
    tally.add(kind, customId, usage);
  const nextSeq = segments.reduce((max, s) => Math.max(max, s.seq + 1), 0);
  return { tally, writer: new SegmentWriter(parts, chunkPrefix(batchId, index), nextSeq, flushMs) };
}

/** Deletes every segment of a batch; returns how many. Idempotent. */
export const deleteBatchSegments = (parts: BlobStore, batchId: string): Promise<number> =>
  parts.deletePrefix(batchSegmentsPrefix(batchId));

/**
 * Gathers a chunk's answered lines and writes them as segments, at most `flushMs` apart. `append` resolves once its
 * line is stored, so a request counts as done only when it would survive the death of its host; after one, at most
 * the requests in flight and one segment's worth are sent again.
 */
export class SegmentWriter {
  private pending: Record<PartKind, string[]> = { out: [], err: [] };
  private lines = 0;
  private waiting: { promise: Promise<void>; resolve(): void; reject(err: unknown): void } | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Segments are written one after another, in sequence order. */
  private writing: Promise<void> = Promise.resolve();
  private readonly tag = randomBytes(3).toString('hex');

  constructor(
    private readonly parts: BlobStore,
    private readonly prefix: string,
    private seq: number,
    private readonly flushMs: number,
  ) {}

  /** Adds a result line (one line of JSON, without its newline). */
  append(kind: PartKind, line: string): Promise<void> {
    this.pending[kind].push(line + '\n');
    this.lines++;
    if (!this.waiting) {
      let resolve!: () => void;
      let reject!: (err: unknown) => void;
      const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
      this.waiting = { promise, resolve, reject };
    }
    const { promise } = this.waiting;
    if (this.lines >= MAX_SEGMENT_LINES) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.flushMs);
    return promise;
  }

  /** Writes the lines gathered so far now: the chunk expects no more answers. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const waiting = this.waiting;
    if (!waiting) return;
    const lines = this.pending;
    const seq = this.seq++;
    this.pending = { out: [], err: [] };
    this.lines = 0;
    this.waiting = null;
    // After a failed write every later one fails too: the attempt fails, and its retry resumes from what is stored.
    const write = this.writing.then(() =>
      Promise.all(
        KINDS.filter((k) => lines[k].length).map((k) =>
          this.parts.put(
            `${this.prefix}${pad(seq, 8)}.${k}.${this.tag}`,
            Readable.from([Buffer.from(lines[k].join(''))]),
          ),
        ),
      ).then(() => undefined),
    );
    this.writing = write;
    write.then(waiting.resolve, waiting.reject);
  }

  /** Writes what is pending and waits for every write. */
  async close(): Promise<void> {
    this.flush();
    await this.writing.catch(() => undefined);
  }
}
