import fs from 'node:fs';
import path from 'node:path';

const BATCH_DIR = /^batch_[A-Za-z0-9]+$/;
const PART_FILE = /^(\d{6})\.(out|err)\.jsonl$/;
const BLOCK = 64 * 1024;

/**
 * Before checkpoint segments, a chunk appended its finished lines to `<parts>/<batchId>/<chunk>.<out|err>.jsonl`
 * on the shared volume. A batch still running when the workers are upgraded has such files: each becomes its
 * chunk's first segment (seq 0, tag 000000), whole lines only, so that resume and finalization find every line.
 * Run by a worker before it polls; safe when several workers run it at once. Returns how many files it adopted.
 */
export async function adoptLegacyParts(partsRoot: string): Promise<number> {
  let adopted = 0;
  const entries = await fs.promises.readdir(partsRoot, { withFileTypes: true }).catch(() => []);
  for (const dir of entries) {
    if (!dir.isDirectory() || !BATCH_DIR.test(dir.name)) continue;
    const folder = path.join(partsRoot, dir.name);
    for (const name of await fs.promises.readdir(folder).catch(() => [] as string[])) {
      const m = PART_FILE.exec(name);
      if (!m) continue;
      const file = path.join(folder, name);
      if (!(await cutTornLine(file))) continue;
      const segment = path.join(partsRoot, `${dir.name}.${m[1]}.00000000.${m[2]}.000000`);
      // Another worker may have adopted it meanwhile.
      const moved = await fs.promises.rename(file, segment).then(
        () => true,
        () => false,
      );
      if (moved) adopted++;
    }
    await fs.promises.rmdir(folder).catch(() => undefined); // left while other files remain
  }
  return adopted;
}

/**
 * Truncates a file after its last newline: a killed worker may have left a line half-written. False when the
 * file is gone (adopted by another worker).
 */
async function cutTornLine(file: string): Promise<boolean> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, 'r+');
  } catch {
    return false;
  }
  try {
    const { size } = await handle.stat();
    const buf = Buffer.alloc(BLOCK);
    let whole = 0;
    for (let end = size; end > 0 && whole === 0; end -= BLOCK) {
      const start = Math.max(0, end - BLOCK);
      const { bytesRead } = await handle.read(buf, 0, end - start, start);
      const nl = buf.subarray(0, bytesRead).lastIndexOf(0x0a);
      if (nl !== -1) whole = start + nl + 1;
    }
    if (whole !== size) await handle.truncate(whole);
    return true;
  } finally {
    await handle.close();
  }
}
