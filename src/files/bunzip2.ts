import bitIterator, { type BitReader } from 'unbzip2-stream/lib/bit_iterator';
import bzip2 from 'unbzip2-stream/lib/bzip2';

/** The most input one block can take at a level (bzip2's bound, as unbzip2-stream reads it). */
const blockInput = (level: number) => 25_000 + 100_000 * level;
const PIECE = 64 * 1024;

/**
 * Decodes bzip2 (one stream or several concatenated) block by block, reading only the input the next block
 * needs, and fails with `overLimit()` at the first byte past `maxBytes`, even mid-block. unbzip2-stream's own
 * stream decodes every buffered block at once, ahead of any reader: a 1.5 kB file of 2 GB of newlines cost
 * 105 s of CPU and 5 GB of memory before a limit saw its first byte.
 */
export async function* bunzip2(
  input: AsyncIterable<Buffer>,
  maxBytes: number,
  overLimit: () => Error,
): AsyncGenerator<Buffer> {
  const source = input[Symbol.asyncIterator]();
  const queue: Buffer[] = [];
  let received = 0;
  let ended = false;
  let bits: BitReader | undefined;
  /** Reads until `needed` unread bytes are buffered or the input ends; false once nothing is left. */
  const fill = async (needed: number): Promise<boolean> => {
    while (!ended && received - (bits?.bytesRead ?? 0) < needed) {
      const next = await source.next();
      if (next.done) ended = true;
      else {
        queue.push(next.value);
        received += next.value.length;
      }
    }
    return received > (bits?.bytesRead ?? 0);
  };

  let budget = maxBytes;
  let level = 0; // 0 between streams
  let crc: number | null = null;
  while (await fill(level ? blockInput(level) : 4)) {
    bits ??= bitIterator(() => queue.shift());
    if (!level) {
      level = bzip2.header(bits);
      crc = 0;
      continue;
    }
    const pieces: Buffer[] = [];
    let piece = Buffer.allocUnsafe(PIECE);
    let n = 0;
    crc = bzip2.decompress(
      bits,
      (byte) => {
        if (budget-- === 0) throw overLimit();
        piece[n++] = byte;
        if (n === PIECE) {
          pieces.push(piece);
          piece = Buffer.allocUnsafe(PIECE);
          n = 0;
        }
      },
      new Int32Array(100_000 * level),
      100_000 * level,
      crc,
    );
    if (crc === null) level = 0;
    if (n > 0) pieces.push(piece.subarray(0, n));
    yield* pieces;
  }
  if (crc !== null) throw new Error('truncated');
}
