import assert from 'node:assert/strict';
import { Refused } from '../../src/services/errors';
import type { PoolConfig } from '../../src/config';
import { ModelCatalog, ServedModels } from '../../src/services/model-catalog';
import { startSimulator, type Simulator } from '../../src/simulator/server';

describe('ModelCatalog: the pool’s models, cached', () => {
  let sim: Simulator;
  let t: number;
  let catalog: ModelCatalog;
  beforeEach(async () => {
    sim = await startSimulator({ model: 'org/model-a' });
    t = 1_000_000;
    catalog = new ModelCatalog(sim.url, undefined, () => t);
  });
  afterEach(() => sim.close());

  const asked = () => sim.stats().byEndpoint['/v1/models'] ?? 0;

  it('asks the pool at most once per 10 s, keeps its last list 5 minutes while the pool is down, then refuses', async () => {
    assert.deepEqual(await catalog.list(), [
      { id: 'org/model-a', object: 'model', created: 0, owned_by: 'besh-simulator' },
    ]);
    t += 9_000;
    await catalog.list();
    assert.equal(asked(), 1, 'fresh for 10 s');

    sim.setFaults({ down: true });
    t += 2_000;
    assert.equal((await catalog.list())[0].id, 'org/model-a', 'the last list, while the pool cannot answer');
    t += 5 * 60_000;
    await assert.rejects(catalog.list(), (e: unknown) => e instanceof Refused && e.kind === 'retry_later');

    sim.setFaults({ down: false });
    assert.equal((await catalog.get('org/model-a')).id, 'org/model-a');
    await assert.rejects(
      catalog.get('other'),
      (e: unknown) => e instanceof Refused && e.code === 'model_not_found',
    );
  });
});

describe('ServedModels: every pool’s models', () => {
  let chat: Simulator;
  let rest: Simulator;
  beforeEach(async () => {
    chat = await startSimulator({ model: 'org/chat' });
    rest = await startSimulator({ model: 'org/rest' });
  });
  afterEach(async () => Promise.all([chat.close(), rest.close()]));

  const pool = (name: string, sim: Simulator, models: string[]): PoolConfig => ({
    name,
    urls: [sim.url],
    apiKey: undefined,
    models,
    metricsUrls: [],
    maxWorkers: 8,
  });

  it('lists the configured models (as their servers describe them) and what the catch-all pool lists', async () => {
    const served = new ServedModels([
      pool('chat', chat, ['org/chat', 'org/chat-lora']),
      pool('rest', rest, []),
    ]);
    assert.deepEqual(await served.list(), [
      { id: 'org/chat', object: 'model', created: 0, owned_by: 'besh-simulator' },
      { id: 'org/chat-lora', object: 'model', created: 0, owned_by: 'vllm' },
      { id: 'org/rest', object: 'model', created: 0, owned_by: 'besh-simulator' },
    ]);
    assert.equal((await served.get('org/rest')).id, 'org/rest');
  });

  it('still lists the configured models of a pool that cannot answer; the catch-all pool alone is a 503', async () => {
    chat.setFaults({ down: true });
    rest.setFaults({ down: true });
    const served = new ServedModels([pool('chat', chat, ['org/chat']), pool('rest', rest, [])]);
    assert.deepEqual(
      (await served.list()).map((m) => m.id),
      ['org/chat'],
    );
    await assert.rejects(
      served.get('org/rest'),
      (e: unknown) => e instanceof Refused && e.code === 'model_not_found',
    );
    await assert.rejects(
      new ServedModels([pool('default', rest, [])]).list(),
      (e: unknown) => e instanceof Refused && e.kind === 'retry_later',
    );
  });
});
