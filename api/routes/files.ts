import Router from '@koa/router';
import { In } from 'typeorm';
import { BatchEntity, FileEntity, type FileRow } from '../../src/db/entities';
import { page } from '../../src/db/paginate';
import {
  BATCH_FILE_DEFAULT_TTL_SECONDS,
  JSONL_PURPOSES,
  toFileObject,
  unexpired,
  UNEXPIRED_SQL,
  unexpiredParams,
} from '../../src/files/file-object';
import { ingestSpooled } from '../../src/files/ingest';
import { storageUsage } from '../../src/files/storage-usage';
import { UploadError } from '../../src/files/upload-error';
import { recordOnce } from '../../src/stats/record';
import { isFileId, newFileId } from '../../src/shared/ids';
import { UNFINISHED_STATUSES } from '../../src/batches/lifecycle';
import { UPLOAD_PURPOSES, type FileDeleted, type FileObject } from '../../src/shared/openai';
import type { AppDeps } from '../app';
import type { AuthState } from '../auth';
import { ApiError, badRequest, notFound } from '../errors';
import { spoolDir, spoolMultipart } from '../multipart';
import { listBody, parseCursor, parseLimit, parseOrder } from '../query';

const now = () => Math.floor(Date.now() / 1000);

function parseExpiresAfter(
  fields: Record<string, string>,
  purpose: string,
  createdAt: number,
): number | null {
  const anchor = fields['expires_after[anchor]'];
  const seconds = fields['expires_after[seconds]'];
  if (anchor === undefined && seconds === undefined) {
    return purpose === 'batch' ? createdAt + BATCH_FILE_DEFAULT_TTL_SECONDS : null;
  }
  if (anchor !== 'created_at') {
    throw badRequest("expires_after[anchor] must be 'created_at'.", 'expires_after.anchor', 'invalid_value');
  }
  const n = Number(seconds);
  if (!Number.isInteger(n) || n < 3600 || n > 2592000) {
    throw badRequest(
      'expires_after[seconds] must be an integer from 3600 to 2592000.',
      'expires_after.seconds',
      'invalid_value',
    );
  }
  return createdAt + n;
}

export function filesRouter(deps: AppDeps): Router<AuthState> {
  const { db, blobs, config } = deps;
  const files = db.getRepository(FileEntity);
  const router = new Router<AuthState>();

  const findOwned = async (id: string, owner: string): Promise<FileRow> => {
    const row = isFileId(id) ? await files.findOneBy(unexpired({ id, owner })) : null;
    if (!row) throw notFound('File', id);
    return row;
  };

  router.post('/files', async (ctx) => {
    const upload = await spoolMultipart(ctx.req, {
      maxFileBytes: config.maxUploadBytes,
      spoolDir: spoolDir(config),
    });
    try {
      const purpose = upload.fields.purpose;
      if (!upload.file)
        throw badRequest("Missing required parameter: 'file'.", 'file', 'missing_required_parameter');
      if (purpose === undefined)
        throw badRequest("Missing required parameter: 'purpose'.", 'purpose', 'missing_required_parameter');
      if (!(UPLOAD_PURPOSES as readonly string[]).includes(purpose)) {
        throw badRequest(
          `Invalid value for 'purpose': '${purpose.slice(0, 64)}'. Expected one of ${UPLOAD_PURPOSES.join(', ')}.`,
          'purpose',
          'invalid_value',
        );
      }
      const createdAt = now();
      const expiresAt = parseExpiresAfter(upload.fields, purpose, createdAt);
      const id = newFileId();
      const { bytes } = await ingestSpooled(upload.file.path, id, JSONL_PURPOSES.has(purpose), blobs, {
        maxBytes: config.maxUploadBytes,
        maxLineBytes: config.maxLineBytes,
        tmpDir: spoolDir(config),
      }).catch((err: unknown) => {
        if (err instanceof UploadError) throw new ApiError(err.status, err.message, err.code, err.param);
        throw err;
      });
      const row: FileRow = {
        id,
        owner: ctx.state.principal.tenantId,
        filename: upload.file.filename.slice(0, 1024),
        purpose: purpose as FileRow['purpose'],
        bytes,
        createdAt,
        expiresAt,
      };
      try {
        await files.insert({ ...row });
      } catch (err) {
        await blobs.delete(id);
        throw err;
      }
      await recordOnce(db, `upload:${id}`, row.owner, createdAt, { uploads: 1, upload_bytes: bytes });
      ctx.body = toFileObject(row) satisfies FileObject;
    } finally {
      await upload.cleanup();
    }
  });

  router.get('/files', async (ctx) => {
    const { tenantId } = ctx.state.principal;
    const limit = parseLimit(ctx.query.limit, 10000, 10000);
    const order = parseOrder(ctx.query.order);
    const qb = files
      .createQueryBuilder('f')
      .where('f.owner = :tenantId', { tenantId })
      .andWhere(UNEXPIRED_SQL, unexpiredParams());
    if (typeof ctx.query.purpose === 'string')
      qb.andWhere('f.purpose = :purpose', { purpose: ctx.query.purpose });
    const after = await parseCursor(ctx.query.after, 'File', isFileId, (id) =>
      files.findOneBy({ id, owner: tenantId }),
    );
    const { rows, hasMore } = await page(qb, { limit, order, after });
    const data = rows.map(toFileObject);
    ctx.body = listBody(data, hasMore);
  });

  router.get('/files/:id', async (ctx) => {
    ctx.body = toFileObject(await findOwned(ctx.params.id, ctx.state.principal.tenantId));
  });

  router.get('/files/:id/content', async (ctx) => {
    const row = await findOwned(ctx.params.id, ctx.state.principal.tenantId);
    ctx.body = await blobs.get(row.id);
    ctx.type =
      row.filename.endsWith('.jsonl') || JSONL_PURPOSES.has(row.purpose) || row.purpose === 'batch_output'
        ? 'application/jsonl'
        : 'application/octet-stream';
    ctx.length = row.bytes;
    ctx.attachment(row.filename, { type: 'attachment' });
  });

  router.delete('/files/:id', async (ctx) => {
    const row = await findOwned(ctx.params.id, ctx.state.principal.tenantId);
    const inUse = await db.getRepository(BatchEntity).existsBy({
      inputFileId: row.id,
      status: In(UNFINISHED_STATUSES),
    });
    if (inUse) {
      throw badRequest(
        `File ${row.id} is the input of a batch that is still running; cancel the batch first.`,
        'file_id',
        'file_in_use',
      );
    }
    // Row first: a file is never listed without its content, and a leftover blob is only garbage.
    await files.delete({ id: row.id });
    await blobs.delete(row.id);
    ctx.body = { id: row.id, object: 'file', deleted: true } satisfies FileDeleted;
  });

  // BESH extension: what this tenant stores, by purpose (expired files awaiting cleanup are not counted).
  router.get('/storage', async (ctx) => {
    ctx.body = { object: 'storage_usage', ...(await storageUsage(db, ctx.state.principal.tenantId)) };
  });

  return router;
}
