import { request } from 'undici';
import type { Model } from '../shared/openai';
import { Refused } from './errors';

/** A catalog this old is asked again; one that cannot be refreshed still answers for this long. */
const FRESH_MS = 10_000;
const STALE_MS = 5 * 60_000;
const TIMEOUT_MS = 3_000;

/**
 * The models the vLLM pool serves, as its own `GET /v1/models` lists them (the ids a batch's lines may name).
 * Cached briefly: `client.models.list()` in a loop must not become traffic on the GPUs' servers. Only the fields
 * of OpenAI's Model object are passed on (vLLM adds its own, such as max_model_len and permissions).
 */
export class ModelCatalog {
  private cached: { models: Model[]; at: number } | null = null;
  private refreshing: Promise<Model[]> | null = null;

  constructor(
    private readonly baseUrl: string,
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
    const model = (await this.list()).find((m) => m.id === id);
    if (!model)
      throw new Refused(
        'not_found',
        `The model '${id.slice(0, 200)}' does not exist`,
        'model_not_found',
        'model',
      );
    return model;
  }

  private async fetch(): Promise<Model[]> {
    const res = await request(`${this.baseUrl}/models`, {
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
