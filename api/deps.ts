import type { ApiKeys } from '../src/auth/api-keys';
import type { Config } from '../src/config';
import type { BatchService } from '../src/services/batch-service';
import type { FileService } from '../src/services/file-service';
import type { IdempotencyService } from '../src/services/idempotency';
import type { ModelCatalog } from '../src/services/model-catalog';
import type { PoolStatsService } from '../src/services/pool-stats';
import type { PartialResultsService } from '../src/services/partial-results';
import type { StatsService } from '../src/services/stats-service';
import type { WebhookService } from '../src/webhooks/endpoints';

/** What the HTTP API is built from; main/ composes it. The handlers parse, authorize and present, nothing more. */
export interface AppDeps {
  config: Config;
  keys: ApiKeys;
  batches: BatchService;
  results: Pick<PartialResultsService, 'read'>;
  files: FileService;
  idempotency: IdempotencyService;
  webhooks: WebhookService;
  models: Pick<ModelCatalog, 'list' | 'get'>;
  /** The upstream pools' in-flight requests, limits, rates and latency, as the workers report them. */
  poolStats: Pick<PoolStatsService, 'current'>;
  stats: StatsService;
  /** The dependencies /health reports, each a probe that resolves when it answers. */
  probes: { database(): Promise<unknown>; temporal(): Promise<unknown>; storage(): Promise<unknown> };
  log?: (msg: string, err?: unknown) => void;
}
