import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startStack, type Stack } from '../support/stack';

describe('Models API: the models the pool serves, through the openai SDK', function () {
  this.timeout(60_000);
  let s: Stack;
  before(async () => {
    // An id with a slash, as Hugging Face names models; the pool starts down.
    s = await startStack({
      worker: false,
      simulator: { model: 'meta-llama/Llama-3.1-8B-Instruct', faults: { down: true } },
    });
  });
  after(async () => s?.close());

  const client = () => new OpenAI({ apiKey: s.keyA, baseURL: s.baseURL, maxRetries: 0 });

  it('answers 503 in the OpenAI shape while the pool cannot list its models, then lists them once it can @smoke', async () => {
    const down = await client()
      .models.list()
      .catch((e: unknown) => e);
    assert.ok(down instanceof OpenAI.APIError, String(down));
    assert.equal(down.status, 503);
    assert.equal(down.code, 'upstream_unavailable');

    s.sim.setFaults({ down: false });
    const page = await client().models.list();
    assert.deepEqual(
      page.data.map((m) => ({ ...m })),
      [{ id: 'meta-llama/Llama-3.1-8B-Instruct', object: 'model', created: 0, owned_by: 'besh-simulator' }],
      "only OpenAI's fields, as the pool lists them",
    );
  });

  it('retrieves a model by an id that holds a slash, and answers 404 model_not_found for any other', async () => {
    const model = await client().models.retrieve('meta-llama/Llama-3.1-8B-Instruct');
    assert.equal(model.id, 'meta-llama/Llama-3.1-8B-Instruct');
    const raw = await fetch(`${s.baseURL}/models/meta-llama/Llama-3.1-8B-Instruct`, {
      headers: { authorization: `Bearer ${s.keyA}` },
    });
    assert.equal(raw.status, 200, 'the slash unencoded, as some clients send it');
    const missing = await client()
      .models.retrieve('gpt-4o')
      .catch((e: unknown) => e);
    assert.ok(missing instanceof OpenAI.NotFoundError, String(missing));
    assert.equal(missing.code, 'model_not_found');
    assert.equal(missing.param, 'model');
  });

  it('needs a key, and answers from its cache for a moment while the pool is down', async () => {
    const anonymous = await fetch(`${s.baseURL}/models`);
    assert.equal(anonymous.status, 401);
    s.sim.setFaults({ down: true });
    try {
      const page = await client().models.list();
      assert.equal(page.data[0]?.id, 'meta-llama/Llama-3.1-8B-Instruct');
    } finally {
      s.sim.setFaults({ down: false });
    }
  });
});
