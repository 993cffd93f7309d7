import Router from '@koa/router';
import fs from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../../src/paths';

/**
 * `GET /v1/openapi.json`: BESH's OpenAPI description (api/openapi.json), without auth: it holds no data. Read
 * once at startup, from the project root whether running from sources or from dist/ (tsc does not copy it).
 */
export function openapiRouter(): Router {
  const description = fs.readFileSync(path.join(projectRoot, 'api', 'openapi.json'));
  const router = new Router();
  router.get('/v1/openapi.json', (ctx) => {
    ctx.set('Cache-Control', 'no-cache');
    ctx.type = 'application/json';
    ctx.body = description;
  });
  return router;
}
