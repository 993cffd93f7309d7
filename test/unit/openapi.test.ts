import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createApp } from '../../api/app';
import type { AppDeps } from '../../api/deps';
import { loadConfig } from '../../src/config';
import { projectRoot } from '../../src/paths';

interface RouteLayer {
  path: string | RegExp;
  methods: string[];
}

/** `METHOD /path` of every route the app's routers serve, path parameters (`:name`, and `*name` for one that may hold slashes) written `{}`. */
function servedRoutes(): string[] {
  // Routes are registered when the app is built; no handler runs, so the services are never used.
  const app = createApp({ config: loadConfig({}), log: () => undefined } as unknown as AppDeps);
  const layers = app.middleware.flatMap(
    (mw) => (mw as { router?: { stack: RouteLayer[] } }).router?.stack ?? [],
  );
  return layers.flatMap((layer) =>
    layer.methods
      // koa-router serves HEAD wherever it serves GET; the description lists GET.
      .filter((m) => m !== 'HEAD')
      .map((m) => `${m} ${String(layer.path).replace(/[:*]\w+/g, '{}')}`),
  );
}

describe('api/openapi.json', () => {
  const description = JSON.parse(fs.readFileSync(path.join(projectRoot, 'api', 'openapi.json'), 'utf8')) as {
    paths: Record<string, Record<string, { operationId: string; responses: Record<string, unknown> }>>;
    components: { responses: Record<string, { content: Record<string, { schema: unknown }> }> };
  };
  const operations = Object.entries(description.paths).flatMap(([p, ops]) =>
    Object.entries(ops).map(([method, op]) => ({ route: `${method.toUpperCase()} ${p}`, op })),
  );

  it('describes exactly the routes the app serves', () => {
    const described = operations.map((o) => o.route.replace(/\{\w+\}/g, '{}'));
    assert.deepEqual([...described].sort(), [...servedRoutes()].sort());
  });

  it('names every operation once', () => {
    const ids = operations.map((o) => o.op.operationId);
    assert.equal(new Set(ids).size, ids.length);
  });

  it("answers every /v1 error in OpenAI's shape", () => {
    for (const { route, op } of operations.filter((o) => o.route.includes(' /v1/'))) {
      for (const [status, response] of Object.entries(op.responses)) {
        if (status.startsWith('2')) continue;
        const name = ((response as { $ref?: string }).$ref ?? '').replace('#/components/responses/', '');
        const schema = description.components.responses[name]?.content['application/json'].schema;
        assert.deepEqual(schema, { $ref: '#/components/schemas/Error' }, `${route} ${status}`);
      }
    }
  });
});
