import busboy from 'busboy';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { formatSize } from '../src/files/upload-error';
import { ApiError, badRequest } from './errors';

export interface SpooledUpload {
  fields: Record<string, string>;
  file: { path: string; filename: string; bytes: number } | null;
  /** Removes the spool file; safe to call more than once. */
  cleanup(): Promise<void>;
}

/**
 * Receives a multipart upload, spooling the file part to disk as it streams in. The SDKs send `file`
 * before `purpose`, so the file's handling can only be decided once the whole form has arrived.
 */
export async function spoolMultipart(
  req: IncomingMessage,
  opts: { maxFileBytes: number; spoolDir: string },
): Promise<SpooledUpload> {
  const contentType = req.headers['content-type'] ?? '';
  if (!/^multipart\/form-data/i.test(contentType)) {
    throw badRequest(
      'Expected a multipart/form-data body with a "file" field.',
      null,
      'invalid_content_type',
    );
  }
  await fs.promises.mkdir(opts.spoolDir, { recursive: true });
  const spoolPath = path.join(opts.spoolDir, `upload-${randomBytes(8).toString('hex')}`);
  const result: SpooledUpload = {
    fields: {},
    file: null,
    cleanup: () => fs.promises.rm(spoolPath, { force: true }),
  };
  let bb: busboy.Busboy;
  try {
    bb = busboy({
      headers: req.headers,
      limits: { files: 1, fields: 20, fieldSize: 4096, fileSize: opts.maxFileBytes, parts: 25 },
    });
  } catch {
    throw badRequest('Malformed multipart/form-data body.', null, 'invalid_multipart');
  }

  let fileWrite: Promise<void> | null = null;
  const fileWriteSettled = () => fileWrite?.catch(() => undefined);
  const parsed = new Promise<void>((resolve, reject) => {
    bb.on('field', (name, value) => {
      result.fields[name] = value;
    });
    bb.on('file', (name, stream, info) => {
      if (name !== 'file' || fileWrite) {
        stream.resume();
        return;
      }
      const out = fs.createWriteStream(spoolPath);
      stream.on('limit', () => {
        reject(
          new ApiError(
            413,
            `File exceeds the maximum upload size of ${formatSize(opts.maxFileBytes)}.`,
            'file_too_large',
            'file',
          ),
        );
        req.unpipe(bb);
        stream.destroy();
      });
      fileWrite = pipeline(stream, out).then(() => {
        result.file = {
          path: spoolPath,
          filename: path.basename(info.filename || 'upload'),
          bytes: out.bytesWritten,
        };
      });
      fileWrite.catch(reject);
    });
    bb.on('filesLimit', () =>
      reject(badRequest('Only one file may be uploaded per request.', 'file', 'too_many_files')),
    );
    bb.on('fieldsLimit', () => reject(badRequest('Too many form fields.', null, 'too_many_fields')));
    bb.on('partsLimit', () => reject(badRequest('Too many form parts.', null, 'too_many_parts')));
    bb.on('error', () =>
      reject(badRequest('Malformed multipart/form-data body.', null, 'invalid_multipart')),
    );
    bb.on('close', resolve);
  });
  req.on('aborted', () => bb.destroy(new Error('client aborted')));
  req.pipe(bb);
  try {
    await parsed;
    if (fileWrite) await fileWrite;
    return result;
  } catch (err) {
    req.unpipe(bb);
    req.resume();
    // The spool file is opened asynchronously: removed before its write stream has closed, it could reappear.
    bb.destroy();
    await fileWriteSettled();
    await result.cleanup();
    throw err;
  }
}
