import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { liveCounts, toBatchObject } from '../../src/batches/batch-object';
import { ParamError, parseCreateBatch } from '../../src/batches/create-params';
import { BatchEntity, FileEntity, type BatchRow } from '../../src/db/entities';
import { page } from '../../src/db/paginate';
import { isBatchId, isFileId, newBatchId } from '../../src/shared/ids';
import { TERMINAL_STATUSES, type Batch } from '../../src/shared/openai';
import { startBatchWorkflow } from '../../temporal/client';
import { cancelUpdate, workflowIdFor } from '../../temporal/shared';
import type { AppDeps } from '../app';
import type { AuthState } from '../auth';
import { badRequest, notFound } from '../errors';
import { listBody, parseCursor, parseLimit } from '../query';

export function batchesRouter(deps: AppDeps): Router<AuthState> {
  const { db, config, temporal } = deps;
  const batches = db.getRepository(BatchEntity);
  const router = new Router<AuthState>();

  const findOwned = async (id: string, owner: string): Promise<BatchRow> => {
    const row = isBatchId(id) ? await batches.findOneBy({ id, owner }) : null;
    if (!row) throw notFound('Batch', id);
    return row;
  };
  const present = async (row: BatchRow): Promise<Batch> =>
    toBatchObject(row, (await liveCounts(db, [row])).get(row.id));

  router.post(
    '/batches',
    bodyParser({ enableTypes: ['json'], jsonLimit: '1mb', encoding: 'utf-8' }),
    async (ctx) => {
      if (!ctx.is('application/json')) {
        throw badRequest(
          'The request body must be JSON (Content-Type: application/json).',
          null,
          'invalid_content_type',
        );
      }
      let params;
      try {
        params = parseCreateBatch(ctx.request.body, {
          minWindowSeconds: config.completionWindowMinSeconds,
          maxWindowSeconds: config.completionWindowMaxSeconds,
        });
      } catch (err) {
        if (err instanceof ParamError) throw badRequest(err.message, err.param, err.code);
        throw err;
      }
      const { tenantId } = ctx.state.principal;
      const file = isFileId(params.inputFileId)
        ? await db.getRepository(FileEntity).findOneBy({ id: params.inputFileId, owner: tenantId })
        : null;
      if (!file) throw notFound('File', params.inputFileId);
      if (file.purpose !== 'batch') {
        throw badRequest(
          `The input file must have purpose 'batch', not '${file.purpose}'.`,
          'input_file_id',
          'invalid_file_purpose',
        );
      }
      const createdAt = Math.floor(Date.now() / 1000);
      const row: BatchRow = {
        id: newBatchId(),
        owner: tenantId,
        endpoint: params.endpoint,
        model: null,
        inputFileId: file.id,
        completionWindow: params.completionWindow,
        status: 'validating',
        outputFileId: null,
        errorFileId: null,
        createdAt,
        inProgressAt: null,
        expiresAt: createdAt + params.windowSeconds,
        finalizingAt: null,
        completedAt: null,
        failedAt: null,
        expiredAt: null,
        cancellingAt: null,
        cancelledAt: null,
        total: 0,
        completed: 0,
        failed: 0,
        inputTokens: 0,
        cachedTokens: 0,
        outputTokens: 0,
        reasoningTokens: 0,
        metadata: params.metadata,
        errors: null,
        outputExpiresAfterSeconds: params.outputExpiresAfterSeconds,
      };
      // The row exists before the workflow so its first activity finds it; it goes again if Temporal refuses.
      await batches.insert({ ...row }); // a copy: insert() writes back the defaults it reads (as strings on PG)
      try {
        await startBatchWorkflow(temporal, config.taskQueue, {
          batchId: row.id,
          owner: tenantId,
          inputFileId: file.id,
          endpoint: params.endpoint,
          expiresAtMs: (createdAt + params.windowSeconds) * 1000,
        });
      } catch (err) {
        await batches.delete({ id: row.id });
        throw err;
      }
      ctx.body = toBatchObject(row);
    },
  );

  router.get('/batches', async (ctx) => {
    const { tenantId } = ctx.state.principal;
    const limit = parseLimit(ctx.query.limit, 20, 100);
    const after = await parseCursor(ctx.query.after, 'Batch', isBatchId, (id) =>
      batches.findOneBy({ id, owner: tenantId }),
    );
    const qb = batches.createQueryBuilder('b').where('b.owner = :tenantId', { tenantId });
    const { rows, hasMore } = await page(qb, { limit, order: 'desc', after });
    const live = await liveCounts(db, rows);
    const data = rows.map((r) => toBatchObject(r, live.get(r.id)));
    ctx.body = listBody(data, hasMore);
  });

  router.get('/batches/:id', async (ctx) => {
    ctx.body = await present(await findOwned(ctx.params.id, ctx.state.principal.tenantId));
  });

  router.post('/batches/:id/cancel', async (ctx) => {
    const row = await findOwned(ctx.params.id, ctx.state.principal.tenantId);
    const refuse = (status: string) =>
      badRequest(`Cannot cancel a batch whose status is ${status}.`, null, 'batch_not_cancellable');
    if (TERMINAL_STATUSES.includes(row.status)) throw refuse(row.status);
    if (row.status !== 'cancelling') {
      try {
        await temporal.workflow.getHandle(workflowIdFor(row.id)).executeUpdate(cancelUpdate);
      } catch (err) {
        // The workflow finished, or is finalizing, between our read and the update.
        if (!(err instanceof WorkflowUpdateFailedError || err instanceof WorkflowNotFoundError)) throw err;
        const now = await batches.findOneByOrFail({ id: row.id });
        if (now.status !== 'cancelling') throw refuse(now.status);
      }
    }
    ctx.body = await present(await batches.findOneByOrFail({ id: row.id }));
  });

  return router;
}
