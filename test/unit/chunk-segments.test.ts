import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { adoptLegacyParts } from '../../activities/legacy-parts';
import {
  deleteBatchSegments,
  readSegments,
  resumeChunk,
  segmentsByChunk,
} from '../../src/results/chunk-segments';
import { LocalBlobStore } from '../../src/storage/local-blob-store';

/** A local store whose writes wait until the test lets them through, to see when an append counts as stored. */
class GatedStore extends LocalBlobStore {
  readonly puts: string[] = [];
  failing = false;
  private gate: Promise<void> = Promise.resolve();
  private open: () => void = () => undefined;

  hold(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }

  release(): void {
    this.open();
  }

  override async put(key: string, source: Readable): Promise<{ bytes: number }> {
    this.puts.push(key);
    await this.gate;
    if (this.failing) throw new Error('store down');
    return super.put(key, source);
  }
}

const line = (i: number, kind: 'out' | 'err') =>
  JSON.stringify(
    kind === 'out'
      ? {
          custom_id: `r${i}`,
          response: { status_code: 200, body: { usage: { prompt_tokens: 1 } } },
          error: null,
        }
      : { custom_id: `r${i}`, response: null, error: { code: 'x', message: 'y' } },
  );

describe('chunk segments: the checkpoint a chunk resumes from on any host', () => {
  let dir: string;
  let parts: GatedStore;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'besh-segments-'));
    parts = new GatedStore(dir);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('an append resolves only once its segment is stored', async () => {
    const { writer } = await resumeChunk(parts, 'batch_a', 0, 1000);
    parts.hold();
    let stored = false;
    const appended = writer.append('out', line(0, 'out')).then(() => (stored = true));
    writer.flush();
    // Bounded wait for the write to start, then a look while it is held.
    for (let i = 0; i < 200 && parts.puts.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(parts.puts.length, 1);
    assert.equal(stored, false, 'not counted while the write is held');
    parts.release();
    await appended;
    await writer.close();
    const ids: string[] = [];
    for await (const { segments } of segmentsByChunk(parts, 'batch_a'))
      for await (const { customId } of readSegments(parts, segments)) ids.push(customId);
    assert.deepEqual(ids, ['r0']);
  });

  it('cuts a segment every 500 lines, keeps write order across kinds, and resumes after the last segment', async () => {
    const first = await resumeChunk(parts, 'batch_b', 3, 1000);
    const appends = Array.from({ length: 1200 }, (_, i) =>
      first.writer.append(i % 10 === 9 ? 'err' : 'out', line(i, i % 10 === 9 ? 'err' : 'out')),
    );
    first.writer.flush();
    await Promise.all(appends);
    await first.writer.close();
    // 500 + 500 lines written as they filled up, 200 at the tail: three sequence numbers, each with both kinds.
    const keys: string[] = [];
    for await (const { key } of parts.list('batch_b.000003.')) keys.push(key);
    assert.deepEqual(
      keys.map((k) => k.split('.').slice(2, 4).join('.')),
      ['00000000.err', '00000000.out', '00000001.err', '00000001.out', '00000002.err', '00000002.out'],
    );
    const again = await resumeChunk(parts, 'batch_b', 3, 1000);
    assert.equal(again.tally.completed, 1080);
    assert.equal(again.tally.failed, 120);
    assert.equal(again.tally.usage.inputTokens, 1080);
    const appended = again.writer.append('out', line(5000, 'out'));
    await again.writer.close(); // writes what is pending at once
    await appended;
    const last: string[] = [];
    for await (const { key } of parts.list('batch_b.000003.00000003.')) last.push(key);
    assert.equal(last.length, 1, 'the resumed writer carries on with the next sequence number');
    assert.equal(await deleteBatchSegments(parts, 'batch_b'), 7);
    assert.equal(await deleteBatchSegments(parts, 'batch_b'), 0);
  });

  it('a failed write fails its appends and every later one, so the attempt retries from what is stored', async () => {
    const { writer } = await resumeChunk(parts, 'batch_c', 0, 10);
    parts.failing = true;
    await assert.rejects(writer.append('out', line(0, 'out')), /store down/);
    parts.failing = false;
    await assert.rejects(writer.append('out', line(1, 'out')), /store down/);
    assert.deepEqual(await resumeChunk(parts, 'batch_c', 0, 1000).then((r) => r.tally.done.size), 0);
    await writer.close();
  });
});

describe('part files from before checkpoint segments', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'besh-legacy-parts-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('become their chunk’s first segment, whole lines only, so a batch running across the upgrade loses none', async () => {
    const folder = path.join(dir, 'batch_old');
    fs.mkdirSync(folder);
    const out = [0, 1].map((i) => line(i, 'out') + '\n').join('');
    const torn = line(2, 'out').slice(0, 20);
    fs.writeFileSync(path.join(folder, '000003.out.jsonl'), out + torn);
    fs.writeFileSync(path.join(folder, '000003.err.jsonl'), line(9, 'err') + '\n');
    fs.writeFileSync(path.join(folder, '000004.out.jsonl'), torn); // nothing whole yet

    assert.equal(await adoptLegacyParts(dir), 3);
    assert.equal(fs.existsSync(folder), false, 'the old folder is gone');
    const parts = new LocalBlobStore(dir);
    const chunk3 = await resumeChunk(parts, 'batch_old', 3, 1000);
    assert.deepEqual([...chunk3.tally.done].sort(), ['r0', 'r1', 'r9']);
    assert.equal(chunk3.tally.completed, 2);
    assert.equal(chunk3.tally.failed, 1);
    assert.equal((await resumeChunk(parts, 'batch_old', 4, 1000)).tally.done.size, 0);
    assert.equal(await adoptLegacyParts(dir), 0, 'idempotent');
  });
});
