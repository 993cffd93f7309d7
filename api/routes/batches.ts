import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { liveCounts, toBatchObject } from '../../src/batches/batch-object';
import { ParamError, parseCreateBatch } from '../../src/batches/create-params';
import { BatchEntity, ChunkProgressEntity, FileEntity, type BatchRow } from '../../src/db/entities';
import { page } from '../../src/db/paginate';
import { unexpired } from '../../src/files/file-object';
import { isBatchId, isFileId, newBatchId } from '../../src/shared/ids';
import { recordOnce } from '../../src/stats/record';
import { INITIAL_STATUS, isTerminal } from '../../src/batches/lifecycle';
import type { Batch, BatchDeleted } from '../../src/shared/openai';
import { startBatchWorkflow } from '../../temporal/client';
import { cancelUpdate, workflowIdFor } from '../../src/contract/batch-workflow';
import type { AppDeps } from '../app';
import type { AuthState } from '../auth';
import { ApiError, badRequest, notFound } from '../errors';
import { listBody, parseCursor, parseLimit } from '../query';

const jsonBody = bodyParser({
  enableTypes: ['json'],
  jsonLimit: '1mb',
  encoding: 'utf-8',
  onError: (err: Error & { status?: number }) => {
    if (err.status === 413)
      throw new ApiError(413, 'The request body is too large (at most 1 MB).', 'body_too_large');
    throw badRequest('We could not parse the JSON body of your request.', null, 'invalid_json');
  },
});

/** How long DELETE waits for a running batch to stop before answering 503 (which clients retry). */
const DELETE_WAIT_MS = 60_000;

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

  router.post('/batches', jsonBody, async (ctx) => {
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
      ? await db.getRepository(FileEntity).findOneBy(unexpired({ id: params.inputFileId, owner: tenantId }))
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
      status: INITIAL_STATUS,
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
    await recordOnce(db, `created:${row.id}`, tenantId, createdAt, { batches_created: 1 });
    ctx.body = toBatchObject(row);
  });

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

  /** Asks the workflow to cancel; false when the batch finished (or is finalizing) and cannot be cancelled. */
  const requestCancel = async (row: BatchRow): Promise<boolean> => {
    if (isTerminal(row.status)) return false;
    if (row.status === 'cancelling') return true;
    try {
      await temporal.workflow.getHandle(workflowIdFor(row.id)).executeUpdate(cancelUpdate);
      return true;
    } catch (err) {
      // The workflow finished, or is finalizing, between our read and the update.
      if (!(err instanceof WorkflowUpdateFailedError || err instanceof WorkflowNotFoundError)) throw err;
      return (await batches.findOneByOrFail({ id: row.id })).status === 'cancelling';
    }
  };

  router.post('/batches/:id/cancel', async (ctx) => {
    const row = await findOwned(ctx.params.id, ctx.state.principal.tenantId);
    if (!(await requestCancel(row))) {
      const { status } = await batches.findOneByOrFail({ id: row.id });
      throw badRequest(`Cannot cancel a batch whose status is ${status}.`, null, 'batch_not_cancellable');
    }
    ctx.body = await present(await batches.findOneByOrFail({ id: row.id }));
  });

  // Not in OpenAI's API; kept from the original BESH. A running batch is cancelled first; its input file stays.
  router.delete('/batches/:id', async (ctx) => {
    const row = await findOwned(ctx.params.id, ctx.state.principal.tenantId);
    if (!isTerminal(row.status)) {
      await requestCancel(row);
      const handle = temporal.workflow.getHandle(workflowIdFor(row.id));
      const finished = await Promise.race([
        handle.result().then(() => true),
        new Promise<false>((resolve) => setTimeout(() => resolve(false), DELETE_WAIT_MS).unref()),
      ]);
      if (!finished) {
        throw new ApiError(
          503,
          'The batch is still stopping; retry the delete in a moment.',
          'batch_stopping',
        );
      }
    }
    const { outputFileId, errorFileId } = await batches.findOneByOrFail({ id: row.id });
    const results = [outputFileId, errorFileId].filter((id): id is string => id !== null);
    await db.transaction(async (tx) => {
      if (results.length) await tx.getRepository(FileEntity).delete(results);
      await tx.getRepository(ChunkProgressEntity).delete({ batchId: row.id });
      await tx.getRepository(BatchEntity).delete({ id: row.id });
    });
    for (const id of results) await deps.blobs.delete(id);
    ctx.body = { id: row.id, object: 'batch', deleted: true } satisfies BatchDeleted;
  });

  return router;
}
