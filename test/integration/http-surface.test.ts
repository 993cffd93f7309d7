import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../../src/paths';
import { startStack, type Stack } from '../support/stack';

describe('HTTP surface: methods and routes', function () {
  let s: Stack;
  before(async () => {
    s = await startStack({ worker: false });
  });
  after(async () => s?.close());

  const send = (method: string, path: string) =>
    fetch(`${s.baseURL.replace(/\/v1$/, '')}${path}`, {
      method,
      headers: { authorization: `Bearer ${s.keyA}` },
    });

  it('answers a known path asked with another method 405, with Allow and an OpenAI error', async () => {
    const cases: Array<[method: string, path: string, allow: string]> = [
      ['PATCH', '/v1/files', 'GET, HEAD, POST'],
      ['PUT', '/v1/files/file-x', 'DELETE, GET, HEAD'],
      ['POST', '/v1/files/file-x/content', 'GET, HEAD'],
      ['GET', '/v1/batches/batch_x/cancel', 'POST'],
      ['PUT', '/v1/batches/batch_x', 'DELETE, GET, HEAD'],
      ['DELETE', '/v1/dashboard/summary', 'GET, HEAD'],
      ['POST', '/health', 'GET, HEAD'],
      ['DELETE', '/metrics', 'GET, HEAD'],
      ['POST', '/', 'GET, HEAD'],
      ['PUT', '/dashboard/app.js', 'GET, HEAD'],
    ];
    for (const [method, path, allow] of cases) {
      const res = await send(method, path);
      assert.equal(res.status, 405, `${method} ${path}`);
      assert.equal(res.headers.get('allow'), allow, `${method} ${path}`);
      assert.equal(res.headers.get('x-should-retry'), 'false');
      assert.deepEqual(await res.json(), {
        error: {
          message: `Method ${method} is not allowed on ${path}; allowed: ${allow}.`,
          type: 'invalid_request_error',
          param: null,
          code: 'method_not_allowed',
        },
      });
    }
  });

  it('answers an unknown path 404 whatever the method', async () => {
    for (const [method, path] of [
      ['GET', '/v1/nope'],
      ['PATCH', '/v1/files/file-x/nope'],
      ['POST', '/nope'],
    ]) {
      const res = await send(method, path);
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.equal(res.headers.get('allow'), null);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'unknown_url');
    }
  });

  it('serves its OpenAPI description at /v1/openapi.json without a key', async () => {
    const res = await fetch(`${s.baseURL}/openapi.json`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const served = (await res.json()) as { openapi: string; paths: Record<string, unknown> };
    const file = JSON.parse(
      fs.readFileSync(path.join(projectRoot, 'api', 'openapi.json'), 'utf8'),
    ) as unknown;
    assert.deepEqual(served, file);
    assert.equal(served.openapi, '3.1.0');
  });

  // Found by schemathesis (test/integration/schemathesis.test.ts).
  it('refuses a repeated query parameter and an unknown purpose filter with a 400, not a 200 or a 500', async () => {
    const cases: Array<[path: string, param: string]> = [
      ['/v1/files?after=null&after=null', 'after'],
      ['/v1/batches?after=a&after=b', 'after'],
      ['/v1/dashboard/batches?after=a&after=b', 'after'],
      ['/v1/files?purpose=batch&purpose=batch', 'purpose'],
      // A NUL byte reached PostgreSQL, which refused the query: a 500.
      ['/v1/files?purpose=%F3%95%8E%B2%00', 'purpose'],
      ['/v1/files?purpose=nope', 'purpose'],
    ];
    for (const [url, param] of cases) {
      const res = await send('GET', url);
      assert.equal(res.status, 400, url);
      const { error } = (await res.json()) as { error: { param: string; code: string } };
      assert.deepEqual([error.param, error.code], [param, 'invalid_value'], url);
    }
    // Every purpose OpenAI lists files by is a filter, also those BESH never stores.
    const res = await send('GET', '/v1/files?purpose=fine-tune-results');
    assert.equal(res.status, 200);
    assert.deepEqual(((await res.json()) as { data: unknown[] }).data, []);
  });
});
