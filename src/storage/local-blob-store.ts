import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { assertSafeKey, BlobNotFoundError, type BlobListing, type BlobStore } from './blob-store';

/** Blobs as plain files under one root; writes go to a temp file in the same folder and are renamed into place. */
export class LocalBlobStore implements BlobStore {
  constructor(readonly root: string) {
    fs.mkdirSync(path.join(root, '.tmp'), { recursive: true });
  }

  private file(key: string): string {
    assertSafeKey(key);
    return path.join(this.root, key);
  }

  async put(key: string, source: Readable): Promise<{ bytes: number }> {
    const target = this.file(key);
    const tmp = path.join(this.root, '.tmp', `${key}.${randomBytes(6).toString('hex')}`);
    // Opened before streaming, so a failed write can never create the temp file after it was removed.
    const out = (await fs.promises.open(tmp, 'wx')).createWriteStream();
    try {
      await pipeline(source, out);
      await fs.promises.rename(tmp, target);
      return { bytes: out.bytesWritten };
    } catch (err) {
      await fs.promises.rm(tmp, { force: true });
      throw err;
    }
  }

  async get(key: string, range?: { start: number; end: number }): Promise<Readable> {
    const file = this.file(key);
    // Open first so a missing blob rejects here, not as a stream error after headers were sent.
    const handle = await fs.promises.open(file, 'r').catch((err: NodeJS.ErrnoException) => {
      throw err.code === 'ENOENT' ? new BlobNotFoundError(key) : err;
    });
    if (range && range.end <= range.start) {
      await handle.close();
      return Readable.from([]);
    }
    return handle.createReadStream(range ? { start: range.start, end: range.end - 1 } : {});
  }

  async size(key: string): Promise<number | null> {
    try {
      return (await fs.promises.stat(this.file(key))).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await fs.promises.rm(this.file(key), { force: true });
  }

  async *list(prefix: string): AsyncIterable<BlobListing> {
    const names = (await fs.promises.readdir(this.root)).filter((n) => n.startsWith(prefix)).sort();
    for (const key of names) {
      const st = await fs.promises.stat(path.join(this.root, key)).catch(() => null);
      if (st?.isFile()) yield { key, bytes: st.size, modifiedMs: st.mtimeMs };
    }
  }

  async ping(): Promise<void> {
    await fs.promises.access(this.root, fs.constants.W_OK);
  }

  async deletePrefix(prefix: string): Promise<number> {
    let deleted = 0;
    for await (const { key } of this.list(prefix)) {
      await this.delete(key);
      deleted++;
    }
    return deleted;
  }

  /** Leftovers of writes interrupted by a crash; safe to remove when nothing is uploading. */
  sweepIncomplete(olderThanMs: number): Promise<number> {
    return removeOlderThan(path.join(this.root, '.tmp'), olderThanMs);
  }
}

/** Deletes the files in `dir` not modified for `olderThanMs`; returns how many. A missing folder is empty. */
export async function removeOlderThan(dir: string, olderThanMs: number): Promise<number> {
  let removed = 0;
  const names = await fs.promises.readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    const p = path.join(dir, name);
    const st = await fs.promises.stat(p).catch(() => null);
    if (st?.isFile() && Date.now() - st.mtimeMs > olderThanMs) {
      await fs.promises.rm(p, { force: true });
      removed++;
    }
  }
  return removed;
}
