import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { BATCH_ENDPOINTS } from '../../src/shared/openai';
import {
  assertEveryLineOnce,
  assertAnswers,
  batchLines,
  createBatch,
  toJsonl,
  waitForBatch,
} from '../support/batches';
import { assertOpenApi } from '../support/openapi';
import { startStack, type Stack } from '../support/stack';

describe('Batches API: the engine end to end', function () {
  this.timeout(120_000);
  let s: Stack;
  before(async () => {
    s = await startStack({ env: { COMPLETION_WINDOW_MIN_SECONDS: '1' } });
  });
  after(async () => s?.close());

  for (const endpoint of BATCH_ENDPOINTS) {
    it(`runs a full ${endpoint} batch, every output line answering its own input @smoke @store`, async () => {
      const input = batchLines(60, endpoint);
      const created = await createBatch(s.openai, toJsonl(input), {
        endpoint,
        metadata: { purpose: 'test' },
      });
      assertOpenApi('Batch', created);
      assert.equal(created.status, 'validating');
      assert.match(created.id, /^batch_/);
      const done = await waitForBatch(s.openai, created.id);
      assertOpenApi('Batch', done);
      assert.equal(done.status, 'completed', JSON.stringify(done.errors));
      assert.equal(done.model, 'sim-model');
      assert.deepEqual(done.metadata, { purpose: 'test' });
      assert.ok(done.in_progress_at && done.finalizing_at && done.completed_at);
      const { out, err } = await assertEveryLineOnce(s.openai, done, input);
      assert.equal(err.length, 0);
      const byId = new Map(input.map((l) => [l.custom_id, l.body]));
      for (const line of out) {
        assert.equal(line.response?.status_code, 200);
        assert.equal(line.error, null);
        assert.match(line.id, /^batch_req_/);
        assertAnswers(endpoint, byId.get(line.custom_id)!, line.response?.body);
      }
      assert.ok(done.usage!.input_tokens > 0);
      assert.equal(done.usage!.total_tokens, done.usage!.input_tokens + done.usage!.output_tokens);
      const outFile = await s.openai.files.retrieve(done.output_file_id!);
      assert.equal(outFile.purpose, 'batch_output');
      assert.equal(done.error_file_id, null);
    });
  }

  it('lists batches newest first with cursor pagination', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await createBatch(s.openaiB, toJsonl(batchLines(2)))).id);
    const seen: string[] = [];
    for await (const b of s.openaiB.batches.list({ limit: 2 })) seen.push(b.id);
    assert.deepEqual(seen, [...ids].reverse());
    const raw = await fetch(`${s.baseURL}/batches?limit=1`, {
      headers: { authorization: `Bearer ${s.keyB}` },
    });
    const page = (await raw.json()) as { has_more: boolean; first_id: string; last_id: string };
    assertOpenApi('ListBatchesResponse', page);
    assert.equal(page.has_more, true);
    assert.equal(page.first_id, ids[2]);
    for (const id of ids) await waitForBatch(s.openaiB, id);
  });

  it('isolates tenants: another key can neither see, list, cancel nor delete a batch (404, not 403)', async () => {
    const mine = await createBatch(s.openai, toJsonl(batchLines(3)));
    const asB = (path: string, method = 'GET') =>
      fetch(`${s.baseURL}${path}`, { method, headers: { authorization: `Bearer ${s.keyB}` } });
    for (const [path, method] of [
      [`/batches/${mine.id}`, 'GET'],
      [`/batches/${mine.id}/cancel`, 'POST'],
      [`/batches/${mine.id}`, 'DELETE'],
      [`/files/${mine.input_file_id}/content`, 'GET'],
    ]) {
      const res = await asB(path, method);
      assert.equal(res.status, 404, `${method} ${path}`);
    }
    const listed = (await (await asB('/batches?limit=100')).json()) as { data: Array<{ id: string }> };
    assert.ok(!listed.data.some((b) => b.id === mine.id));
    assert.equal(
      (await waitForBatch(s.openai, mine.id)).status,
      'completed',
      "the owner's batch was untouched",
    );
  });

  it('rejects bad create parameters synchronously with 400/404', async () => {
    const file = await s.openai.files.create({
      file: await OpenAI.toFile(Buffer.from(toJsonl(batchLines(1))), 'b.jsonl'),
      purpose: 'batch',
    });
    const cases: Array<[Record<string, unknown>, number, RegExp]> = [
      [
        { input_file_id: file.id, endpoint: '/v1/moderations', completion_window: '24h' },
        400,
        /Invalid 'endpoint'/,
      ],
      [
        { input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '1000d' },
        400,
        /completion_window/,
      ],
      [
        { input_file_id: 'file-nope', endpoint: '/v1/chat/completions', completion_window: '24h' },
        404,
        /No such File object/,
      ],
      [
        {
          input_file_id: file.id,
          endpoint: '/v1/chat/completions',
          completion_window: '24h',
          metadata: { k: 5 },
        },
        400,
        /metadata/,
      ],
      [
        {
          input_file_id: file.id,
          endpoint: '/v1/chat/completions',
          completion_window: '24h',
          api_base: 'http://evil',
        },
        400,
        /Unrecognized request argument/,
      ],
    ];
    for (const [body, status, pattern] of cases) {
      const err = await s.openai.batches.create(body as never).then(
        () => null,
        (e: unknown) => e,
      );
      assert.ok(err instanceof OpenAI.APIError, JSON.stringify(body));
      assert.equal(err.status, status, JSON.stringify(body));
      assert.match(err.message, pattern);
    }
    // Another tenant's file is simply not found.
    const err = await s.openaiB.batches
      .create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })
      .catch((e: unknown) => e);
    assert.ok(err instanceof OpenAI.NotFoundError);
  });
});
