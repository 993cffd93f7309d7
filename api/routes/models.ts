import Router from '@koa/router';
import type { AuthState } from '../auth';
import type { AppDeps } from '../deps';

/** `GET /v1/models` and `GET /v1/models/{model}` in OpenAI's shape: what a batch's lines may name as `model`. */
export function modelsRouter({ models }: Pick<AppDeps, 'models'>): Router<AuthState> {
  const router = new Router<AuthState>();
  router.get('/models', async (ctx) => {
    ctx.body = { object: 'list', data: await models.list() };
  });
  // A model id may hold a slash (meta-llama/Llama-3.1-8B), sent encoded or not.
  router.get('/models/*model', async (ctx) => {
    ctx.body = await models.get(ctx.params.model);
  });
  return router;
}
