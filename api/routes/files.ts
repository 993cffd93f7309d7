import Router from '@koa/router';
import { JSONL_PURPOSES } from '../../src/files/file-object';
import { spoolDir } from '../../src/files/spool';
import { digestUpload } from '../../src/services/idempotency';
import { UPLOAD_PURPOSES, type FileDeleted, type UploadPurpose } from '../../src/shared/openai';
import type { AuthState } from '../auth';
import type { AppDeps } from '../deps';
import { badRequest } from '../errors';
import { idempotently } from '../idempotency';
import { spoolMultipart } from '../multipart';
import { listBody, parseLimit, parseOrder, queryString } from '../query';

const isUploadPurpose = (p: string): p is UploadPurpose => (UPLOAD_PURPOSES as readonly string[]).includes(p);

// Every purpose OpenAI lists files by; those BESH never stores (assistants_output, fine-tune-results) list nothing.
const LIST_PURPOSES = [...UPLOAD_PURPOSES, 'batch_output', 'assistants_output', 'fine-tune-results'];

function parseListPurpose(raw: string | undefined): string | undefined {
  if (raw === undefined || LIST_PURPOSES.includes(raw)) return raw;
  throw badRequest(
    `Invalid 'purpose': expected one of ${LIST_PURPOSES.join(', ')}.`,
    'purpose',
    'invalid_value',
  );
}

/** `expires_after[anchor]` and `expires_after[seconds]`: the seconds to expiry, or undefined when not given. */
function parseExpiresAfter(fields: Record<string, string>): number | undefined {
  const anchor = fields['expires_after[anchor]'];
  const seconds = fields['expires_after[seconds]'];
  if (anchor === undefined && seconds === undefined) return undefined;
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
  return n;
}

export function filesRouter({
  files,
  idempotency,
  config,
}: Pick<AppDeps, 'files' | 'idempotency' | 'config'>): Router<AuthState> {
  const router = new Router<AuthState>();

  router.post('/files', async (ctx) => {
    const respond = idempotently(ctx, idempotency);
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
      if (!isUploadPurpose(purpose)) {
        throw badRequest(
          `Invalid value for 'purpose': '${purpose.slice(0, 64)}'. Expected one of ${UPLOAD_PURPOSES.join(', ')}.`,
          'purpose',
          'invalid_value',
        );
      }
      const file = upload.file;
      await respond(
        () => digestUpload(file, upload.fields),
        () =>
          files.upload(ctx.state.principal.tenantId, {
            spoolPath: file.path,
            filename: file.filename,
            purpose,
            expiresAfterSeconds: parseExpiresAfter(upload.fields),
          }),
      );
    } finally {
      await upload.cleanup();
    }
  });

  router.get('/files', async (ctx) => {
    const limit = parseLimit(ctx.query.limit, 10000, 10000);
    const order = parseOrder(ctx.query.order);
    const { data, hasMore } = await files.list(ctx.state.principal.tenantId, {
      limit,
      order,
      purpose: parseListPurpose(queryString(ctx.query.purpose, 'purpose')),
      after: queryString(ctx.query.after, 'after'),
    });
    ctx.body = listBody(data, hasMore);
  });

  router.get('/files/:id', async (ctx) => {
    ctx.body = await files.get(ctx.state.principal.tenantId, ctx.params.id);
  });

  router.get('/files/:id/content', async (ctx) => {
    const { file, body } = await files.content(ctx.state.principal.tenantId, ctx.params.id);
    ctx.body = body;
    ctx.type =
      file.filename.endsWith('.jsonl') || JSONL_PURPOSES.has(file.purpose) || file.purpose === 'batch_output'
        ? 'application/jsonl'
        : 'application/octet-stream';
    ctx.length = file.bytes;
    ctx.attachment(file.filename, { type: 'attachment' });
  });

  router.delete('/files/:id', async (ctx) => {
    await files.delete(ctx.state.principal.tenantId, ctx.params.id);
    ctx.body = { id: ctx.params.id, object: 'file', deleted: true } satisfies FileDeleted;
  });

  // BESH extension: what this tenant stores, by purpose (expired files awaiting cleanup are not counted).
  router.get('/storage', async (ctx) => {
    ctx.body = { object: 'storage_usage', ...(await files.storageUsage(ctx.state.principal.tenantId)) };
  });

  return router;
}
