import assert from 'node:assert/strict';
import { Refused } from '../../src/services/errors';
import { ModelCatalog } from '../../src/services/model-catalog';
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
