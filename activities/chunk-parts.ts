import fs from 'node:fs';
import path from 'node:path';
import { readLines } from '../src/files/line-reader';
import { addUsage, usageOf, zeroUsage, type Usage } from './result-lines';

export type PartKind = 'out' | 'err';
export const PART_KINDS: readonly PartKind[] = ['out', 'err'];

export const batchPartsDir = (partsRoot: string, batchId: string) => path.join(partsRoot, batchId);
export const partPath = (partsRoot: string, batchId: string, index: number, kind: PartKind) =>
  path.join(batchPartsDir(partsRoot, batchId), `${String(index).padStart(6, '0')}.${kind}.jsonl`);

/** What a chunk's part files hold: every request in them is finished. */
export class PartTally {
  /** custom_ids already answered, so a resumed chunk skips them. */
  readonly done = new Set<string>();
  completed = 0;
  failed = 0;
  readonly usage = zeroUsage();

  /** Counts a request whose line is in the `kind` part file; a success brings its token usage. */
  add(kind: PartKind, customId: string, usage?: Usage): void {
    this.done.add(customId);
    if (kind === 'err') this.failed++;
    else this.completed++;
    if (usage) addUsage(this.usage, usage);
  }
}

/** A whole line of a part file: one finished request. */
export interface PartLine {
  /** The line without its newline. */
  line: Buffer;
  customId: string;
  /** Token usage of a success; none in the error file. */
  usage?: Usage;
}

/**
 * Streams the whole lines of a part file (none if it does not exist), each parsed once, then cuts off a last line
 * that a killed worker left half-written so that the next append starts on a line of its own.
 */
export async function* readPart(file: string, kind: PartKind): AsyncGenerator<PartLine> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, 'r+');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    let whole = 0;
    for await (const { line, start, end } of readLines(
      handle.createReadStream({ autoClose: false, start: 0 }),
    )) {
      if (end - start === line.length) break; // no newline: the write was cut short
      let parsed: { custom_id?: unknown; response?: { body?: unknown } | null };
      try {
        parsed = JSON.parse(line.toString('utf8'));
      } catch {
        break; // a torn write: everything from here on is redone
      }
      if (typeof parsed.custom_id !== 'string') break;
      const usage = kind === 'out' ? usageOf(parsed.response?.body) : undefined;
      yield { line, customId: parsed.custom_id, usage };
      whole = end;
    }
    const { size } = await handle.stat();
    if (size !== whole) await handle.truncate(whole);
  } finally {
    await handle.close();
  }
}

/** Tallies a chunk's part files, trimming a torn last line: they are the chunk's durable checkpoint. */
export async function scanChunkParts(partsRoot: string, batchId: string, index: number): Promise<PartTally> {
  const tally = new PartTally();
  for (const kind of PART_KINDS)
    for await (const { customId, usage } of readPart(partPath(partsRoot, batchId, index, kind), kind))
      tally.add(kind, customId, usage);
  return tally;
}

/** How long appended lines wait to be written together; a write per line was the worker's biggest CPU cost. */
const FLUSH_EVERY_MS = 10;

/**
 * Appends whole lines to a chunk's two part files, gathering the lines of FLUSH_EVERY_MS into one write per file.
 * `append` resolves once its line is on disk, so a request counts as done only when it would survive a crash.
 */
export class ChunkPartWriter {
  private pending: Record<PartKind, string[]> = { out: [], err: [] };
  private batch: Promise<void> | null = null;
  private writing: Promise<unknown> = Promise.resolve();

  private constructor(private readonly files: Record<PartKind, fs.promises.FileHandle>) {}

  static async open(partsRoot: string, batchId: string, index: number): Promise<ChunkPartWriter> {
    await fs.promises.mkdir(batchPartsDir(partsRoot, batchId), { recursive: true });
    const out = await fs.promises.open(partPath(partsRoot, batchId, index, 'out'), 'a');
    const err = await fs.promises
      .open(partPath(partsRoot, batchId, index, 'err'), 'a')
      .catch(async (e: unknown) => {
        await out.close();
        throw e;
      });
    return new ChunkPartWriter({ out, err });
  }

  append(kind: PartKind, line: object): Promise<void> {
    this.pending[kind].push(JSON.stringify(line) + '\n');
    this.batch ??= new Promise<void>((resolve, reject) => {
      setTimeout(() => this.flush().then(resolve, reject), FLUSH_EVERY_MS);
    });
    return this.batch;
  }

  private async flush(): Promise<void> {
    this.batch = null; // lines appended from now on go into the next write
    const lines = this.pending;
    this.pending = { out: [], err: [] };
    // Writes stay in order: a batch starts only after the one before it is on disk.
    this.writing = this.writing.then(() =>
      Promise.all(
        PART_KINDS.filter((k) => lines[k].length).map((k) => this.files[k].write(lines[k].join(''))),
      ),
    );
    await this.writing;
  }

  async close(): Promise<void> {
    await this.batch?.catch(() => undefined);
    await Promise.allSettled([this.files.out.close(), this.files.err.close()]);
  }
}
