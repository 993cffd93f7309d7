import { S3Client } from '@aws-sdk/client-s3';
import path from 'node:path';
import type { Config, S3Config } from '../config';
import type { BlobStore } from './blob-store';
import { LocalBlobStore } from './local-blob-store';
import { S3BlobStore } from './s3-blob-store';

/**
 * The two stores every process opens: `files` (uploads and results, keyed by file id) and `parts` (a chunk's
 * checkpoint segments until finalization joins them).
 */
export function openBlobStores(config: Config): { files: BlobStore; parts: BlobStore } {
  if (config.blobStore === 'local') {
    return {
      files: new LocalBlobStore(config.filesDir),
      parts: new LocalBlobStore(path.join(config.dataDir, 'parts')),
    };
  }
  const client = createS3Client(config.s3);
  const { bucket, prefix } = config.s3;
  return {
    files: new S3BlobStore(client, bucket, `${prefix}files/`),
    parts: new S3BlobStore(client, bucket, `${prefix}parts/`),
  };
}

/**
 * One client per process. The standard retry strategy resends throttled (503 SlowDown), 5xx, timed-out and reset
 * requests with jittered backoff; 8 attempts ride out a throttling burst of several seconds.
 */
export function createS3Client(s3: S3Config): S3Client {
  return new S3Client({
    region: s3.region,
    endpoint: s3.endpoint,
    forcePathStyle: s3.forcePathStyle,
    credentials: s3.credentials,
    retryMode: 'standard',
    maxAttempts: 8,
    // Reads are taken whole per window and bodies are buffers, so a silent socket means a hung connection.
    requestHandler: { connectionTimeout: 5_000, socketTimeout: 60_000 },
    // Other S3 implementations (Ceph, GCS, older MinIO) reject the SDK's default checksums; AWS keeps them.
    ...(s3.endpoint
      ? { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' }
      : {}),
  });
}
