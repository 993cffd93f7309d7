import fs from 'node:fs';
import { pipeline } from 'node:stream';
import type { BlobStore } from '../storage/blob-store';
import { decompressed } from './decompress';
import { JsonlCheck } from './jsonl-check';

export interface IngestLimits {
  maxBytes: number;
  maxLineBytes: number;
  /** Lines of a JSONL upload, blank ones included. */
  maxLines: number;
  /** Decoded bytes allowed per byte of a compressed upload. */
  maxExpansionRatio: number;
  tmpDir: string;
}

/**
 * Moves a spooled upload into blob storage under `key`. JSONL uploads are decompressed (by magic bytes) and
 * checked line by line on the way; any failure rejects with an UploadError and leaves no blob behind. Each
 * limit refuses the upload as soon as it is certain to be passed, so a bomb costs no more than the honest file
 * it would be cut down to.
 */
export async function ingestSpooled(
  spoolPath: string,
  key: string,
  jsonl: boolean,
  blobs: BlobStore,
  limits: IngestLimits,
): Promise<{ bytes: number }> {
  if (!jsonl) return blobs.put(key, fs.createReadStream(spoolPath));
  const { size } = await fs.promises.stat(spoolPath);
  const source = await decompressed(fs.createReadStream(spoolPath), {
    maxBytes: limits.maxBytes,
    expansion: { maxRatio: limits.maxExpansionRatio, sourceBytes: size },
    tmpDir: limits.tmpDir,
  });
  try {
    const check = new JsonlCheck({
      requireJsonObjects: true,
      maxLineBytes: limits.maxLineBytes,
      maxLines: limits.maxLines,
    });
    // pipeline() tears both stages down on an error in either; the store then sees it as `check`'s error.
    return await blobs.put(
      key,
      pipeline(source.stream, check, () => undefined),
    );
  } finally {
    await source.cleanup();
  }
}
