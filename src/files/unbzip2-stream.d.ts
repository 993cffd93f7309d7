// unbzip2-stream's decoder, used block by block (see bunzip2.ts); its stream API decodes all buffered blocks at once.
declare module 'unbzip2-stream/lib/bit_iterator' {
  function bitIterator(next: () => Buffer | undefined): bitIterator.BitReader;
  namespace bitIterator {
    /** Reads `n` bits, most significant first; `null` skips to the next byte boundary. */
    interface BitReader {
      (n: number | null): number;
      /** Bytes started so far. */
      bytesRead: number;
    }
  }
  export = bitIterator;
}

declare module 'unbzip2-stream/lib/bzip2' {
  import type { BitReader } from 'unbzip2-stream/lib/bit_iterator';

  const bzip2: {
    /** Reads a stream's "BZh" header and returns its level (block size in 100 kB). */
    header(bits: BitReader): number;
    /**
     * Decodes one block, calling `out` with each byte, and returns the running stream CRC; null at the end of the
     * stream. `buf` must be a fresh Int32Array of `bufsize` = level × 100,000. Throws on corrupt data.
     */
    decompress(
      bits: BitReader,
      out: (byte: number) => void,
      buf: Int32Array,
      bufsize: number,
      streamCRC: number | null,
    ): number | null;
  };
  export = bzip2;
}
