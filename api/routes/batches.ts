import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import { parseCreateBatch } from '../../src/batches/create-params';
import { digestJson } from '../../src/services/idempotency';
import type { ResultKind } from '../../src/services/partial-results';
import type { BatchDeleted } from '../../src/shared/openai';
import type { AuthState } from '../auth';
import type { AppDeps } from '../deps';
import { ApiError, badRequest } from '../errors';
import { idempotently } from '../idempotency';
import { listBody, parseLimit, queryString } from '../query';

export const jsonBody = bodyParser({
  enableTypes: ['json'],
  jsonLimit: '1mb',
  encoding: 'utf-8',
  onError: (err: Error & { status?: number }) => {
    if (err.status === 413)
      throw new ApiError(413, 'The request body is too large (at most 1 MB).', 'body_too_large');
    throw badRequest('We could not parse the JSON body of your request.', null, 'invalid_json');
  },
});

const NEWLINE = Buffer.from('\n');

function parseKind(raw: string | undefined): ResultKind {
  if (raw === undefined || raw === 'output' || raw === 'error') return raw ?? 'output';
  throw badRequest("Invalid 'kind': expected 'output' or 'error'.", 'kind', 'invalid_value');
}

export function batchesRouter({
  batches,
  results,
  idempotency,
  config,
}: Pick<AppDeps, 'batches' | 'results' | 'idempotency' | 'config'>): Router<AuthState> {
  const router = new Router<AuthState>();

  router.post('/batches', jsonBody, async (ctx) => {
    if (!ctx.is('application/json')) {
      throw badRequest(
        'The request body must be JSON (Content-Type: application/json).',
        null,
        'invalid_content_type',
      );
    }
    const respond = idempotently(ctx, idempotency);
    const params = parseCreateBatch(ctx.request.body, {
      minWindowSeconds: config.completionWindowMinSeconds,
      maxWindowSeconds: config.completionWindowMaxSeconds,
    });
    await respond(
      () => digestJson(ctx.request.body),
      () => batches.create(ctx.state.principal.tenantId, params),
    );
  });

  router.get('/batches', async (ctx) => {
    const limit = parseLimit(ctx.query.limit, 20, 100);
    const { data, hasMore } = await batches.list(ctx.state.principal.tenantId, {
      limit,
      after: queryString(ctx.query.after, 'after'),
    });
    ctx.body = listBody(data, hasMore);
  });

  router.get('/batches/:id', async (ctx) => {
    ctx.body = await batches.get(ctx.state.principal.tenantId, ctx.params.id);
  });

  // A BESH extension: the result lines answered so far, as JSONL, a page at a time (see PartialResultsService).
  router.get('/batches/:id/partial_results', async (ctx) => {
    const page = await results.read(ctx.state.principal.tenantId, ctx.params.id, {
      kind: parseKind(queryString(ctx.query.kind, 'kind')),
      after: queryString(ctx.query.after, 'after'),
      limit: parseLimit(ctx.query.limit, 1000, 10_000),
    });
    ctx.set('x-next-after', page.nextAfter);
    ctx.set('x-has-more', String(page.hasMore));
    ctx.type = 'application/jsonl';
    ctx.body = Buffer.concat(page.lines.flatMap((line) => [line, NEWLINE]));
  });

  router.post('/batches/:id/cancel', async (ctx) => {
    ctx.body = await batches.cancel(ctx.state.principal.tenantId, ctx.params.id);
  });

  // Not in OpenAI's API; kept from the original BESH.
  router.delete('/batches/:id', async (ctx) => {
    await batches.delete(ctx.state.principal.tenantId, ctx.params.id);
    ctx.body = { id: ctx.params.id, object: 'batch', deleted: true } satisfies BatchDeleted;
  });

  return router;
}
