import Router from '@koa/router';
import type { AppDeps } from '../deps';

const withTimeout = <T>(p: Promise<T>, ms: number) =>
  Promise.race([
    p,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), ms).unref()),
  ]);

/** 200 only when the database, Temporal and the file store answer; otherwise 503 naming what is down. */
export function healthRouter(probes: AppDeps['probes']): Router {
  const router = new Router();
  router.get('/health', async (ctx) => {
    const check = (p: () => Promise<unknown>) =>
      withTimeout(p(), 3000).then(
        () => 'ok' as const,
        () => 'down' as const,
      );
    const [database, temporal, storage] = await Promise.all([
      check(() => probes.database()),
      check(() => probes.temporal()),
      check(() => probes.storage()),
    ]);
    const ok = database === 'ok' && temporal === 'ok' && storage === 'ok';
    ctx.status = ok ? 200 : 503;
    ctx.body = { status: ok ? 'ok' : 'unavailable', database, temporal, storage };
  });
  return router;
}
