import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
  S3ServiceException,
  type GetObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { assertSafeKey, BlobNotFoundError, type BlobListing, type BlobStore } from './blob-store';

export interface S3BlobStoreOptions {
  /** Bytes per multipart part (S3's minimum is 5 MiB); an upload buffers at most queueSize × partSize. */
  partSize?: number;
  /** Parts uploaded at once. */
  queueSize?: number;
  /** Bytes per ranged GET of a read; each window is read whole before it is handed on. */
  readWindow?: number;
}

const MiB = 1024 * 1024;

/**
 * Blobs as objects under `prefix` in one bucket. Writes stream into a multipart upload (a single PutObject when the
 * blob fits in one part), so an object appears only once complete; a failed upload is aborted. Retries of throttling
 * and 5xx answers are the client's (see createS3Client).
 */
export class S3BlobStore implements BlobStore {
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly readWindow: number;
  /** False once the store has refused DeleteObjects. */
  private batchDelete = true;

  constructor(
    readonly client: S3Client,
    readonly bucket: string,
    readonly prefix: string,
    options: S3BlobStoreOptions = {},
  ) {
    this.partSize = options.partSize ?? 5 * MiB;
    this.queueSize = options.queueSize ?? 4;
    this.readWindow = options.readWindow ?? 1 * MiB;
  }

  private objectKey(key: string): string {
    assertSafeKey(key);
    return this.prefix + key;
  }

  async put(key: string, source: Readable): Promise<{ bytes: number }> {
    const Key = this.objectKey(key);
    let bytes = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        bytes += chunk.length;
        done(null, chunk);
      },
    });
    const piped = pipeline(source, counter);
    // Parts are buffers, so the client can resend a part that failed; leavePartsOnError false aborts the upload.
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key, Body: counter },
      partSize: this.partSize,
      queueSize: this.queueSize,
      leavePartsOnError: false,
    });
    const stored = upload.done().catch((err: unknown) => {
      // The upload stopped reading: release the source.
      counter.destroy(err instanceof Error ? err : new Error(String(err)));
      throw err;
    });
    // Both settle before returning, so a failed upload has been aborted by then.
    const [read, written] = await Promise.allSettled([piped, stored]);
    if (read.status === 'rejected') throw read.reason;
    if (written.status === 'rejected') throw written.reason;
    return { bytes };
  }

  async get(key: string, range?: { start: number; end: number }): Promise<Readable> {
    const Key = this.objectKey(key);
    const start = range?.start ?? 0;
    const end = range?.end ?? Infinity;
    if (end <= start) {
      // Still rejects for a missing blob, like a read would.
      if ((await this.size(key)) === null) throw new BlobNotFoundError(key);
      return Readable.from([]);
    }
    // The first window is fetched here, so a missing blob rejects before a stream exists.
    const first = await this.window(key, Key, start, end, undefined);
    if (!first) return Readable.from([]);
    // One window ahead at most (Readable.from would otherwise buffer 16): a paused reader holds about 2 MiB.
    return Readable.from(this.windows(key, Key, first, end), { objectMode: false, highWaterMark: 1 });
  }

  /**
   * The rest of a read, window by window. Each window is read whole before it is yielded, so a consumer that pauses
   * for minutes (a chunk waiting for request slots) never holds an S3 response open; If-Match pins every window to
   * the object the first one came from.
   */
  private async *windows(
    key: string,
    Key: string,
    first: { data: Buffer; next: number; total: number; etag: string | undefined },
    end: number,
  ): AsyncGenerator<Buffer> {
    let current: typeof first | null = first;
    while (current) {
      yield current.data;
      const stop = Math.min(end, current.total);
      if (current.next >= stop) return;
      current = await this.window(key, Key, current.next, stop, current.etag);
    }
  }

  /** One ranged GET read to the end; null when `start` is at or past the end of the object. */
  private async window(
    key: string,
    Key: string,
    start: number,
    end: number,
    etag: string | undefined,
  ): Promise<{ data: Buffer; next: number; total: number; etag: string | undefined } | null> {
    const last = Math.min(end, start + this.readWindow) - 1;
    // The client retries failed requests; a response that breaks off midway is fetched again here.
    for (let attempt = 1; ; attempt++) {
      let res: GetObjectCommandOutput;
      try {
        res = await this.client.send(
          new GetObjectCommand({ Bucket: this.bucket, Key, Range: `bytes=${start}-${last}`, IfMatch: etag }),
        );
      } catch (err) {
        if (isS3Error(err, 'NoSuchKey')) throw new BlobNotFoundError(key);
        // S3 answers 416 for a range that starts at or past the end (an empty object has no valid range).
        if (isS3Error(err, 'InvalidRange', 416)) return null;
        throw err;
      }
      try {
        const data = Buffer.from(await res.Body!.transformToByteArray());
        const total = Number(/\/(\d+)$/.exec(res.ContentRange ?? '')?.[1] ?? start + data.length);
        return { data, next: start + data.length, total, etag: etag ?? res.ETag };
      } catch (err) {
        if (attempt >= 3) throw err;
      }
    }
  }

  async size(key: string): Promise<number | null> {
    try {
      const head = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }),
      );
      return head.ContentLength ?? 0;
    } catch (err) {
      if (isS3Error(err, 'NotFound', 404)) return null;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    // S3 answers a delete of a missing key with success.
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
  }

  async *list(prefix: string): AsyncIterable<BlobListing> {
    let ContinuationToken: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix + prefix, ContinuationToken }),
      );
      // S3 lists keys in UTF-8 byte order, which for safe keys (ASCII) is ascending string order.
      for (const o of page.Contents ?? []) {
        const key = o.Key!.slice(this.prefix.length);
        if (key.includes('/')) continue; // not written by this store
        yield { key, bytes: o.Size ?? 0, modifiedMs: o.LastModified?.getTime() ?? 0 };
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  /** HeadBucket: fails for a missing bucket, refused credentials or an unreachable endpoint. */
  async ping(timeoutMs = 3000): Promise<void> {
    // Bounded: a health check must not leave retries running against a store that is down.
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }), {
      abortSignal: AbortSignal.timeout(timeoutMs),
    });
  }

  /** One DeleteObjects request per listed page (at most 1,000 keys). */
  async deletePrefix(prefix: string): Promise<number> {
    assertSafeKey(prefix || 'x'); // the prefix of safe keys: an empty one means the whole store
    let deleted = 0;
    let ContinuationToken: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix + prefix, ContinuationToken }),
      );
      const keys = (page.Contents ?? [])
        .map((o) => ({ Key: o.Key! }))
        .filter((k) => !k.Key.slice(this.prefix.length).includes('/'));
      if (keys.length) {
        await this.deleteKeys(keys.map((k) => k.Key));
        deleted += keys.length;
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
    return deleted;
  }

  /**
   * One DeleteObjects request for up to 1,000 keys. Some S3-compatible stores refuse it (no batch delete, or
   * Content-MD5 required where the SDK sends a CRC32): then one DeleteObject per key, a few at a time.
   */
  private async deleteKeys(keys: string[]): Promise<void> {
    if (this.batchDelete) {
      try {
        const res = await this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true },
          }),
        );
        if (!res.Errors?.length) return;
        throw new Error(`S3 could not delete ${res.Errors.length} objects: ${res.Errors[0].Code}`);
      } catch (err) {
        const refused =
          err instanceof S3ServiceException &&
          [
            'NotImplemented',
            'MissingContentMD5',
            'InvalidDigest',
            'InvalidRequest',
            'MethodNotAllowed',
          ].includes(err.name);
        if (!refused) throw err;
        this.batchDelete = false;
      }
    }
    for (let i = 0; i < keys.length; i += 16)
      await Promise.all(
        keys
          .slice(i, i + 16)
          .map((Key) => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }))),
      );
  }

  /** Multipart uploads under this store's prefix left unfinished (by a crash) for longer than `olderThanMs`. */
  async sweepIncomplete(olderThanMs: number): Promise<number> {
    const cutoff = Date.now() - olderThanMs;
    let aborted = 0;
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    do {
      const page = await this.client.send(
        new ListMultipartUploadsCommand({
          Bucket: this.bucket,
          Prefix: this.prefix,
          KeyMarker,
          UploadIdMarker,
        }),
      );
      for (const u of page.Uploads ?? []) {
        if (!u.Initiated || u.Initiated.getTime() >= cutoff) continue;
        try {
          await this.client.send(
            new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key!, UploadId: u.UploadId! }),
          );
          aborted++;
        } catch (err) {
          // Finished or aborted by someone else meanwhile.
          if (!isS3Error(err, 'NoSuchUpload')) throw err;
        }
      }
      [KeyMarker, UploadIdMarker] = page.IsTruncated ? [page.NextKeyMarker, page.NextUploadIdMarker] : [];
    } while (KeyMarker);
    return aborted;
  }
}

/** By error code, or by status for answers without a body (HEAD). */
function isS3Error(err: unknown, name: string, status?: number): boolean {
  return err instanceof S3ServiceException && (err.name === name || err.$metadata?.httpStatusCode === status);
}
