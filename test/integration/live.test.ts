import assert from 'node:assert/strict';
import { createBatch, downloadLines, toJsonl, waitForBatch } from '../support/batches';
import { startStack, type Stack } from '../support/stack';

const apiKey = process.env.TEST_API_KEY;
const baseURL = process.env.TEST_BASE_URL ?? 'https://api.openai.com/v1';
const model = process.env.TEST_MODEL ?? 'gpt-4.1-nano';

// Opt-in: the only test that talks to a real service. Without TEST_API_KEY nothing starts and nothing is sent.
describe('Live upstream (opt-in: set TEST_API_KEY, optionally TEST_BASE_URL and TEST_MODEL)', function () {
  this.timeout(300_000);
  let s: Stack;
  before(async function () {
    if (!apiKey) {
      console.log('    skipped: TEST_API_KEY is not set, so no request leaves this machine');
      this.skip();
    }
    s = await startStack({ env: { VLLM_BASE_URL: baseURL, VLLM_API_KEY: apiKey } });
  });
  after(async () => s?.close());

  it(`runs a 3-request chat batch through BESH against ${baseURL}`, async () => {
    assert.equal(s.config.vllmBaseUrl, baseURL.replace(/\/+$/, ''), 'the upstream is the live service');
    const input = Array.from({ length: 3 }, (_, i) => ({
      custom_id: `live-${i}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model, messages: [{ role: 'user', content: `Reply with the number ${i}.` }], max_tokens: 5 },
    }));
    const created = await createBatch(s.openai, toJsonl(input));
    const done = await waitForBatch(s.openai, created.id, { timeoutMs: 240_000 });
    const failures = await downloadLines(s.openai, done.error_file_id);
    assert.equal(done.status, 'completed', JSON.stringify(done.errors ?? failures.slice(0, 1)));
    assert.deepEqual(failures, [], JSON.stringify(failures.slice(0, 1)));
    const out = await downloadLines(s.openai, done.output_file_id);
    assert.equal(out.length, 3);
    assert.deepEqual(
      out.map((l) => l.response?.status_code),
      [200, 200, 200],
    );
    assert.deepEqual(out.map((l) => l.custom_id).sort(), ['live-0', 'live-1', 'live-2']);
    assert.equal(s.sim.stats().received, 0, 'nothing went to the simulator');
  });
});
