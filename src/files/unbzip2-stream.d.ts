declare module 'unbzip2-stream' {
  import type { Stream } from 'node:stream';

  /** A classic (streams1) through stream: write()/end() compressed bytes, 'data' events of decompressed ones. */
  interface Unbzip2Stream extends Stream {
    write(chunk: Buffer): boolean;
    end(): void;
  }

  function unbzip2Stream(): Unbzip2Stream;
  export = unbzip2Stream;
}
