/**
 * A rejected upload. The message is shown to the client as is, so it must never carry a filesystem
 * path, a stack or another internal detail; the API turns it into OpenAI's `invalid_request_error`.
 */
export class UploadError extends Error {
  override readonly name = 'UploadError';

  constructor(
    readonly status: 400 | 413,
    readonly code: string,
    message: string,
    readonly param: string | null = 'file',
  ) {
    super(message);
  }
}

const MB = 1024 * 1024;

/** "200 MB" for limits of a megabyte or more, "512 bytes" below. */
export const formatSize = (bytes: number): string =>
  bytes >= MB ? `${Math.round(bytes / MB)} MB` : `${bytes} bytes`;
