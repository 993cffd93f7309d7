import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import type { ResultIndex } from '../../src/db/entities';
import {
  deleteBatchSegments,
  readSegments,
  resumeChunk,
  segmentsByChunk,
  type PartKind,
  type SegmentWriter,
} from '../../src/results/chunk-segments';
import {
  decodeCursor,
  encodeCursor,
  InvalidCursor,
  startCursor,
  type PartialCursor,
} from '../../src/results/partial-cursor';
import { readFinished, readRunning, type PartialPage } from '../../src/results/partial-results';
import { mulberry32 } from '../../src/shared/prng';
import { LocalBlobStore } from '../../src/storage/local-blob-store';

const BATCH = 'batch_partial';
const line = (id: string, kind: PartKind, attempt: number) =>
  JSON.stringify({ custom_id: id, attempt, response: kind === 'out' ? { status_code: 200 } : null });
const idOf = (l: Buffer) => (JSON.parse(l.toString()) as { custom_id: string }).custom_id;

/**
 * Writes the result file of one kind the way finalization does (each chunk's segments with the first stored answer
 * winning, then the chunk's `missing` lines), and its index.
 */
async function finalFile(
  parts: LocalBlobStore,
  blobs: LocalBlobStore,
  kind: PartKind,
  chunks: number,
  missing: Map<number, string[]>,
): Promise<{ fileId: string; index: ResultIndex; lines: string[] }> {
  const lines: string[] = [];
  const index: ResultIndex = { out: [], err: [] };
  const byChunk = new Map<number, Awaited<ReturnType<typeof collect>>>();
  for await (const { chunk, segments } of segmentsByChunk(parts, BATCH))
    byChunk.set(chunk, await collect(parts, segments));
  for (let c = 0; c < chunks; c++) {
    const own = { out: 0, err: 0 };
    for (const l of byChunk.get(c) ?? []) {
      own[l.kind]++;
      if (l.kind === kind) lines.push(l.line.toString());
    }
    for (const id of missing.get(c) ?? []) {
      own.err++;
      if (kind === 'err') lines.push(JSON.stringify({ custom_id: id, missing: true }));
    }
    index.out.push(own.out);
    index.err.push(own.err);
  }
  const fileId = `file-${kind}`;
  await blobs.put(fileId, Readable.from([Buffer.from(lines.map((l) => l + '\n').join(''))]));
  return { fileId, index, lines };
}

async function collect(parts: LocalBlobStore, segments: Parameters<typeof readSegments>[1]) {
  const out = [];
  for await (const l of readSegments(parts, segments)) out.push(l);
  return out;
}

describe('partial results: every line once, while a batch runs and after', () => {
  let dir: string;
  let parts: LocalBlobStore;
  let blobs: LocalBlobStore;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'besh-partial-'));
    parts = new LocalBlobStore(path.join(dir, 'parts'));
    blobs = new LocalBlobStore(path.join(dir, 'files'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a cursor survives its token, and a token of another kind or shape is refused', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<PartKind>('out', 'err'),
        fc.array(
          fc.tuple(
            fc.nat(5000),
            fc.nat(2000),
            fc.nat(600),
            fc.nat(1000).map((n) => n + 1),
          ),
          { maxLength: 60 },
        ),
        (kind, entries) => {
          const chunks = new Map(entries.map(([c, s, l, r]) => [c, { segments: s, lines: l, read: r }]));
          const cursor: PartialCursor = { kind, phase: 'running', chunks };
          const back = decodeCursor(encodeCursor(cursor), kind);
          assert.deepEqual(back, cursor);
          assert.throws(
            () => decodeCursor(encodeCursor(cursor), kind === 'out' ? 'err' : 'out'),
            InvalidCursor,
          );
        },
      ),
    );
    const file: PartialCursor = {
      kind: 'err',
      phase: 'file',
      offset: 2 ** 40 + 3,
      section: 7,
      line: 12,
      skips: new Map([
        [7, 30],
        [9, 1000],
      ]),
    };
    assert.deepEqual(decodeCursor(encodeCursor(file), 'err'), file);
    for (const bad of ['', 'x', '!!!', encodeCursor(file).slice(0, -2), 'AQAA' + 'gICA', 'a'.repeat(20001)])
      assert.throws(() => decodeCursor(bad, 'err'), InvalidCursor, bad.slice(0, 20));
  });

  it('pages taken at random moments of a run, a resumed chunk and finalization give the result file exactly', async () => {
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      await deleteBatchSegments(parts, BATCH);
      const random = mulberry32(seed);
      const CHUNKS = 4;
      const PER_CHUNK = 60;
      const writers = new Map<number, SegmentWriter>();
      for (let c = 0; c < CHUNKS; c++) writers.set(c, (await resumeChunk(parts, BATCH, c, 60_000)).writer);
      const answered = new Map<number, string[]>();
      const cursors: Record<PartKind, PartialCursor> = { out: startCursor('out'), err: startCursor('err') };
      const got: Record<PartKind, string[]> = { out: [], err: [] };
      const take = async (kind: PartKind, page: PartialPage) => {
        got[kind].push(...page.lines.map((l) => l.toString()));
        // The cursor goes through its token, as a client carries it.
        cursors[kind] = decodeCursor(encodeCursor(page.next), kind);
      };
      let attempt = 1;
      for (let step = 0; step < 400; step++) {
        const c = Math.floor(random() * CHUNKS);
        const done = answered.get(c) ?? [];
        if (done.length < PER_CHUNK) {
          const id = `c${c}-r${done.length}`;
          const kind: PartKind = random() < 0.2 ? 'err' : 'out';
          done.push(id);
          answered.set(c, done);
          void writers.get(c)!.append(kind, line(id, kind, attempt));
          if (random() < 0.2) writers.get(c)!.flush();
        }
        if (step === 200) {
          // Chunk 1's attempt is replaced: the new one answers some of the same requests again.
          await writers.get(1)!.close();
          attempt = 2;
          const again = (await resumeChunk(parts, BATCH, 1, 60_000)).writer;
          writers.set(1, again);
          for (const id of (answered.get(1) ?? []).slice(0, 5)) void again.append('out', line(id, 'out', 2));
          again.flush();
        }
        if (random() < 0.15) {
          const kind: PartKind = random() < 0.5 ? 'out' : 'err';
          await writers.get(c)!.close();
          const cursor = cursors[kind];
          assert.equal(cursor.phase, 'running');
          await take(
            kind,
            await readRunning(parts, BATCH, cursor, { lines: 1 + Math.floor(random() * 30), bytes: 1e9 }),
          );
        }
      }
      // The reader falls behind in chunk 0 after having read from every chunk: the file's first pages then end
      // inside chunk 0's section, and the lines already read from the later chunks must still be skipped.
      for (let i = 0; i < 20; i++) void writers.get(0)!.append('out', line(`c0-late-${i}`, 'out', attempt));
      for (let i = 0; i < 20; i++)
        void writers.get(0)!.append('err', line(`c0-late-err-${i}`, 'err', attempt));
      for (const w of writers.values()) await w.close();
      // Chunk 3 was cut short: finalization adds error lines for its unanswered requests.
      const missing = new Map([[3, ['c3-never-1', 'c3-never-2']]]);
      for (const kind of ['out', 'err'] as const) {
        const { fileId, index, lines } = await finalFile(parts, blobs, kind, CHUNKS, missing);
        for (let guard = 0; ; guard++) {
          assert.ok(guard < 1000);
          const page = await readFinished(blobs, fileId, index, cursors[kind], { lines: 7, bytes: 1e9 });
          await take(kind, page);
          if (!page.hasMore) break;
        }
        assert.equal(
          new Set(got[kind].map((l) => idOf(Buffer.from(l)))).size,
          got[kind].length,
          'no line twice',
        );
        assert.deepEqual([...got[kind]].sort(), [...lines].sort(), `seed ${seed}: the pages hold the file`);
        // Read again from the start, the finished batch gives the file in its order.
        const whole: string[] = [];
        let cursor: PartialCursor = startCursor(kind);
        for (;;) {
          const page = await readFinished(blobs, fileId, index, cursor, { lines: 5, bytes: 200 });
          whole.push(...page.lines.map((l) => l.toString()));
          cursor = page.next;
          if (!page.hasMore) break;
        }
        assert.deepEqual(whole, lines);
      }
    }
  });

  it('a running batch whose result file came without an index refuses a cursor that had read lines', async () => {
    await blobs.put('f', Readable.from([Buffer.from('{"custom_id":"a"}\n')]));
    const read: PartialCursor = {
      kind: 'out',
      phase: 'running',
      chunks: new Map([[0, { segments: 1, lines: 0, read: 1 }]]),
    };
    await assert.rejects(readFinished(blobs, 'f', null, read, { lines: 10, bytes: 1e9 }), InvalidCursor);
    const page = await readFinished(blobs, 'f', null, startCursor('out'), { lines: 10, bytes: 1e9 });
    assert.equal(page.lines.length, 1);
    assert.equal(page.hasMore, false);
  });
});
