import type { Readable } from 'node:stream';
import { In, type DataSource } from 'typeorm';
import { UNFINISHED_STATUSES } from '../batches/lifecycle';
import { BatchEntity, FileEntity, type FileRow } from '../db/entities';
import { page } from '../db/paginate';
import {
  BATCH_FILE_DEFAULT_TTL_SECONDS,
  JSONL_PURPOSES,
  toFileObject,
  unexpired,
  UNEXPIRED_SQL,
  unexpiredParams,
} from '../files/file-object';
import { ingestSpooled } from '../files/ingest';
import { storageUsage, type StorageUsage } from '../files/storage-usage';
import { isFileId, newFileId } from '../shared/ids';
import type { FileObject, UploadPurpose } from '../shared/openai';
import { recordOnce } from '../stats/record';
import type { BlobStore } from '../storage/blob-store';
import { notFound, Refused } from './errors';
import { resolveCursor, type Page } from './listing';

export interface FileLimits {
  maxUploadBytes: number;
  maxLineBytes: number;
  maxUploadLines: number;
  maxExpansionRatio: number;
  /** Where decompression keeps its temporary files. */
  spoolDir: string;
}

export interface Upload {
  /** The upload as received, on local disk; the caller removes it. */
  spoolPath: string;
  filename: string;
  purpose: UploadPurpose;
  /** Seconds from creation to expiry; undefined takes the purpose's default. */
  expiresAfterSeconds?: number;
}

/** Files of one owner: upload, read, download and delete. Expired files are gone for clients before cleanup. */
export class FileService {
  private readonly files;

  constructor(
    private readonly db: DataSource,
    private readonly blobs: BlobStore,
    private readonly limits: FileLimits,
  ) {
    this.files = db.getRepository(FileEntity);
  }

  /**
   * Stores a spooled upload: JSONL purposes are decompressed and checked on the way (an UploadError says why
   * not). Content first, then the row; a row that cannot be written takes its content with it.
   */
  async upload(owner: string, upload: Upload): Promise<FileObject> {
    const createdAt = Math.floor(Date.now() / 1000);
    const ttl =
      upload.expiresAfterSeconds ?? (upload.purpose === 'batch' ? BATCH_FILE_DEFAULT_TTL_SECONDS : null);
    const id = newFileId();
    const { bytes } = await ingestSpooled(
      upload.spoolPath,
      id,
      JSONL_PURPOSES.has(upload.purpose),
      this.blobs,
      {
        maxBytes: this.limits.maxUploadBytes,
        maxLineBytes: this.limits.maxLineBytes,
        maxLines: this.limits.maxUploadLines,
        maxExpansionRatio: this.limits.maxExpansionRatio,
        tmpDir: this.limits.spoolDir,
      },
    );
    const row: FileRow = {
      id,
      owner,
      filename: upload.filename.slice(0, 1024),
      purpose: upload.purpose,
      bytes,
      createdAt,
      expiresAt: ttl === null ? null : createdAt + ttl,
    };
    try {
      await this.files.insert({ ...row });
    } catch (err) {
      await this.blobs.delete(id);
      throw err;
    }
    await recordOnce(this.db, `upload:${id}`, owner, createdAt, { uploads: 1, upload_bytes: bytes });
    return toFileObject(row);
  }

  async get(owner: string, id: string): Promise<FileObject> {
    return toFileObject(await this.findOwned(owner, id));
  }

  async list(
    owner: string,
    opts: { limit: number; order: 'asc' | 'desc'; purpose?: string; after?: string },
  ): Promise<Page<FileObject>> {
    const qb = this.files
      .createQueryBuilder('f')
      .where('f.owner = :owner', { owner })
      .andWhere(UNEXPIRED_SQL, unexpiredParams());
    if (opts.purpose !== undefined) qb.andWhere('f.purpose = :purpose', { purpose: opts.purpose });
    const after = await resolveCursor(opts.after, 'File', isFileId, (id) =>
      this.files.findOneBy({ id, owner }),
    );
    const { rows, hasMore } = await page(qb, { limit: opts.limit, order: opts.order, after });
    return { data: rows.map(toFileObject), hasMore };
  }

  /** The file and a stream of its content. */
  async content(owner: string, id: string): Promise<{ file: FileObject; body: Readable }> {
    const row = await this.findOwned(owner, id);
    return { file: toFileObject(row), body: await this.blobs.get(row.id) };
  }

  /** Refused while the file is the input of an unfinished batch: its run still reads it. */
  async delete(owner: string, id: string): Promise<void> {
    const row = await this.findOwned(owner, id);
    const inUse = await this.db.getRepository(BatchEntity).existsBy({
      inputFileId: row.id,
      status: In(UNFINISHED_STATUSES),
    });
    if (inUse) {
      throw new Refused(
        'conflict',
        `File ${row.id} is the input of a batch that is still running; cancel the batch first.`,
        'file_in_use',
        'file_id',
      );
    }
    // Row first: a file is never listed without its content, and a leftover blob is only garbage.
    await this.files.delete({ id: row.id });
    await this.blobs.delete(row.id);
  }

  storageUsage(owner: string): Promise<StorageUsage> {
    return storageUsage(this.db, owner);
  }

  private async findOwned(owner: string, id: string): Promise<FileRow> {
    const row = isFileId(id) ? await this.files.findOneBy(unexpired({ id, owner })) : null;
    if (!row) throw notFound('File', id);
    return row;
  }
}
