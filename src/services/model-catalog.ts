import { request } from 'undici';
import type { PoolConfig } from '../config';
import type { Model } from '../shared/openai';
import { Refused } from './errors';

/** A catalog this old is asked again; one that cannot be refreshed still answers for this long. */
const FRESH_MS = 10_000;
const STALE_MS = 5 * 60_000;
const TIMEOUT_MS = 3_000;

/**
 * The models one vLLM pool serves, as its own `GET /v1/models` lists them (the first of its servers that answers).
 * Cached briefly: `client.models.list()` in a loop must not become traffic on the GPUs' servers. Only the fields
 * of OpenAI's Model object are passed on (vLLM adds its own, such as max_model_len and permissions).
 */
export class ModelCatalog {
  private cached: { models: Model[]; at: number } | null = null;
  private refreshing: Promise<Model[]> | null = null;

  constructor(
    private readonly baseUrl: string | readonly string[],
    private readonly apiKey: string | undefined,
    /** Milliseconds; tests pass a clock they move. */
    private readonly clock: () => number = Date.now,
  ) {}

  async list(): Promise<Model[]> {
    const now = this.clock();
    if (this.cached && now - this.cached.at < FRESH_MS) return this.cached.models;
    try {
      this.refreshing ??= this.fetch().finally(() => (this.refreshing = null));
      const models = await this.refreshing;
      this.cached = { models, at: this.clock() };
      return models;
    } catch {
      if (this.cached && now - this.cached.at < STALE_MS) return this.cached.models;
      throw new Refused(
        'retry_later',
        'The model server could not be reached to list its models; try again shortly.',
        'upstream_unavailable',
      );
    }
  }

  async get(id: string): Promise<Model> {
    return findModel(await this.list(), id);
  }

  private async fetch(): Promise<Model[]> {
    const urls = typeof this.baseUrl === 'string' ? [this.baseUrl] : this.baseUrl;
    for (const [i, url] of urls.entries()) {
      try {
        return await this.fetchFrom(url);
      } catch (err) {
        if (i === urls.length - 1) throw err;
      }
    }
    throw new Error('models: no server');
  }

  private async fetchFrom(baseUrl: string): Promise<Model[]> {
    const res = await request(`${baseUrl}/models`, {
      headers: this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {},
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const body = (await res.body.json()) as { data?: unknown };
    if (res.statusCode !== 200 || !Array.isArray(body.data)) throw new Error(`models: ${res.statusCode}`);
    return body.data
      .filter(
        (m): m is Record<string, unknown> =>
          typeof m === 'object' && m !== null && typeof (m as { id?: unknown }).id === 'string',
      )
      .map((m) => ({
        id: m.id as string,
        object: 'model',
        created: typeof m.created === 'number' && Number.isInteger(m.created) ? m.created : 0,
        owned_by: typeof m.owned_by === 'string' ? m.owned_by : 'vllm',
      }));
  }
}

function findModel(models: Model[], id: string): Model {
  const model = models.find((m) => m.id === id);
  if (!model)
    throw new Refused(
      'not_found',
      `The model '${id.slice(0, 200)}' does not exist`,
      'model_not_found',
      'model',
    );
  return model;
}

/**
 * The models every pool serves (what GET /v1/models answers): a pool's configured models, each as its servers
 * describe it when they list it, and everything the pool without a model list (VLLM_BASE_URL's) lists itself. A
 * pool that cannot answer still has its configured models listed; only when nothing at all can be listed is the
 * answer a 503, as with one pool.
 */
export class ServedModels {
  private readonly pools: Array<{ models: string[]; catalog: ModelCatalog }>;

  constructor(pools: readonly PoolConfig[], clock: () => number = Date.now) {
    this.pools = pools.map((p) => ({ models: p.models, catalog: new ModelCatalog(p.urls, p.apiKey, clock) }));
  }

  async list(): Promise<Model[]> {
    const configured = this.pools.some((p) => p.models.length > 0);
    const lists = await Promise.all(
      this.pools.map(async ({ models, catalog }) => {
        // A list of configured models stands without the servers; the pool taking every other model does not.
        const listed = await catalog.list().catch((err: unknown) => {
          if (models.length === 0 && !configured) throw err;
          return [];
        });
        if (models.length === 0) return listed;
        return models.map(
          (id) =>
            listed.find((m) => m.id === id) ?? { id, object: 'model' as const, created: 0, owned_by: 'vllm' },
        );
      }),
    );
    const seen = new Set<string>();
    return lists.flat().filter((m) => !seen.has(m.id) && seen.add(m.id));
  }

  async get(id: string): Promise<Model> {
    return findModel(await this.list(), id);
  }
}
