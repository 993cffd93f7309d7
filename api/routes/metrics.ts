import Router from '@koa/router';
import { In } from 'typeorm';
import type { ApiKeys } from '../../src/auth/api-keys';
import { BatchEntity } from '../../src/db/entities';
import { registry, trackRunningBatches } from '../../src/metrics/registry';
import { UNFINISHED_STATUSES } from '../../src/batches/lifecycle';
import type { AppDeps } from '../app';
import { requireApiKey, type AuthState } from '../auth';

/** `GET /metrics` in Prometheus text format, behind the API key like everything with data. */
export function metricsRouter(deps: AppDeps & { keys: ApiKeys }): Router<AuthState> {
  // Unfinished batches only (an indexed, small set): finished ones are the besh_batches_finished_total counter.
  trackRunningBatches(async () => {
    const rows: Array<{ status: string; n: string | number }> = await deps.db
      .getRepository(BatchEntity)
      .createQueryBuilder('b')
      .select('b.status', 'status')
      .addSelect('COUNT(*)', 'n')
      .where({ status: In(UNFINISHED_STATUSES) })
      .groupBy('b.status')
      .getRawMany();
    return Object.fromEntries(
      UNFINISHED_STATUSES.map((s) => [s, Number(rows.find((r) => r.status === s)?.n ?? 0)]),
    );
  });
  const router = new Router<AuthState>();
  router.get('/metrics', requireApiKey(deps.keys), async (ctx) => {
    ctx.type = registry.contentType;
    ctx.body = await registry.metrics();
  });
  return router;
}
