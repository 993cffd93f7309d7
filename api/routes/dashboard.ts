import Router from '@koa/router';
import { BATCH_STATUSES, isBatchStatus, TERMINAL_STATUSES } from '../../src/batches/lifecycle';
import type { Batch, BatchError } from '../../src/shared/openai';
import { BUCKET_SECONDS, type StatColumn } from '../../src/stats/columns';
import type { AuthState } from '../auth';
import type { AppDeps } from '../deps';
import { badRequest } from '../errors';
import { listBody, parseLimit, queryString } from '../query';

const iso = (unix: number | null) => (unix === null ? null : new Date(unix * 1000).toISOString());
/** The time ranges the charts and cards cover; the default is the last day. */
const RANGES = { '1h': 3600, '6h': 6 * 3600, '24h': 24 * 3600, '7d': 7 * 24 * 3600 } as const;
type Range = keyof typeof RANGES;

function parseRange(value: unknown): Range {
  if (value === undefined) return '24h';
  if (typeof value === 'string' && Object.hasOwn(RANGES, value)) return value as Range;
  throw badRequest(
    `Invalid 'range': expected one of ${Object.keys(RANGES).join(', ')}.`,
    'range',
    'invalid_value',
  );
}

/** A failed batch shows why in its row; the whole list stays on the batch object. */
const FIRST_ERRORS = 5;

/** A batch as the dashboard shows it: the OpenAI object plus progress, ETA, timing and its Temporal UI link. */
export interface BatchView {
  id: string;
  status: Batch['status'];
  endpoint: string;
  model: string | null;
  input_file_id: string;
  output_file_id: string | null;
  error_file_id: string | null;
  metadata: Record<string, string> | null;
  /** The batch's first errors (validation or failure reasons), with their input line numbers. */
  errors: BatchError[];
  errors_total: number;
  request_counts: Batch['request_counts'];
  usage: { input_tokens: number; output_tokens: number; total_tokens: number };
  percent: number;
  eta_seconds: number | null;
  created_at: string;
  in_progress_at: string | null;
  finalizing_at: string | null;
  completed_at: string | null;
  failed_at: string | null;
  expired_at: string | null;
  cancelling_at: string | null;
  cancelled_at: string | null;
  duration_seconds: number | null;
  temporal_url: string;
  priority: Batch['priority'];
  /** The deadline: when the completion window closes. */
  expires_at: string | null;
}

function toView(b: Batch, temporalUrl: string, now: number): BatchView {
  const { total, completed, failed } = b.request_counts;
  const done = completed + failed;
  const finishedAt = b.completed_at ?? b.failed_at ?? b.expired_at ?? b.cancelled_at;
  let eta: number | null = null;
  if (b.status === 'in_progress' && b.in_progress_at && done > 0 && total > done) {
    const rate = done / Math.max(1, now - b.in_progress_at);
    eta = Math.round((total - done) / rate);
  }
  return {
    id: b.id,
    status: b.status,
    endpoint: b.endpoint,
    model: b.model,
    input_file_id: b.input_file_id,
    output_file_id: b.output_file_id,
    error_file_id: b.error_file_id,
    metadata: b.metadata,
    errors: (b.errors?.data ?? []).slice(0, FIRST_ERRORS),
    errors_total: b.errors?.data.length ?? 0,
    request_counts: b.request_counts,
    usage: {
      input_tokens: b.usage.input_tokens,
      output_tokens: b.usage.output_tokens,
      total_tokens: b.usage.total_tokens,
    },
    percent: total > 0 ? Math.floor((100 * done) / total) : b.status === 'completed' ? 100 : 0,
    eta_seconds: eta,
    created_at: iso(b.created_at)!,
    in_progress_at: iso(b.in_progress_at),
    finalizing_at: iso(b.finalizing_at),
    completed_at: iso(b.completed_at),
    failed_at: iso(b.failed_at),
    expired_at: iso(b.expired_at),
    cancelling_at: iso(b.cancelling_at),
    cancelled_at: iso(b.cancelled_at),
    duration_seconds: finishedAt ? finishedAt - b.created_at : null,
    temporal_url: `${temporalUrl}/workflows/${encodeURIComponent(b.id)}`,
    priority: b.priority,
    expires_at: iso(b.expires_at),
  };
}

/** JSON behind the dashboard page. Charts and cards read the 15-minute stats buckets, never batches or lines. */
export function dashboardRouter({
  batches,
  files,
  stats,
  config,
  webhooks,
  poolStats,
}: Pick<AppDeps, 'batches' | 'files' | 'stats' | 'config' | 'webhooks' | 'poolStats'>): Router<AuthState> {
  const temporalUrl = `${config.temporalUiUrl}/namespaces/${encodeURIComponent(config.temporalNamespace)}`;
  const router = new Router<AuthState>({ prefix: '/dashboard' });
  const nowSeconds = () => Math.floor(Date.now() / 1000);
  /** The buckets of the range the query asks for. */
  const buckets = async (ctx: { state: AuthState; query: Record<string, unknown> }, now = nowSeconds()) => {
    const range = parseRange(ctx.query.range);
    return { range, all: await stats.recent(ctx.state.principal.tenantId, now, RANGES[range]) };
  };

  router.get('/throughput', async (ctx) => {
    const { range, all } = await buckets(ctx);
    const data = all.map((b) => ({
      start: iso(b.start),
      requests_succeeded: b.get('requests_succeeded'),
      requests_failed: b.get('requests_failed'),
      input_tokens: b.get('input_tokens'),
      output_tokens: b.get('output_tokens'),
      mean_upstream_latency_ms: b.get('latency_count')
        ? Math.round(b.get('latency_ms_sum') / b.get('latency_count'))
        : null,
    }));
    ctx.body = { object: 'dashboard.throughput', range, bucket_seconds: BUCKET_SECONDS, data };
  });

  router.get('/uploads', async (ctx) => {
    const { range, all } = await buckets(ctx);
    const data = all.map((b) => ({
      start: iso(b.start),
      uploads: b.get('uploads'),
      bytes: b.get('upload_bytes'),
    }));
    ctx.body = { object: 'dashboard.uploads', range, bucket_seconds: BUCKET_SECONDS, data };
  });

  router.get('/summary', async (ctx) => {
    const owner = ctx.state.principal.tenantId;
    const now = nowSeconds();
    const { range, all } = await buckets(ctx, now);
    const sum = (c: StatColumn) => all.reduce((t, b) => t + b.get(c), 0);
    const finished = Object.fromEntries(
      TERMINAL_STATUSES.map((s) => [s, sum(`batches_${s}` as StatColumn)]),
    ) as Record<(typeof TERMINAL_STATUSES)[number], number>;
    const finishedCount = TERMINAL_STATUSES.reduce((t, s) => t + finished[s], 0);
    const requests = sum('requests_succeeded') + sum('requests_failed');
    const running = Object.values(await batches.unfinishedByStatus(owner)).reduce((t, n) => t + n, 0);
    const { files: storedFiles, bytes: storedBytes } = await files.storageUsage(owner);
    ctx.body = {
      object: 'dashboard.summary',
      range,
      since: iso(all[0].start),
      until: iso(now),
      batches: {
        created: sum('batches_created'),
        completed: finished.completed,
        failed: finished.failed,
        cancelled: finished.cancelled,
        expired: finished.expired,
        running,
      },
      requests: {
        succeeded: sum('requests_succeeded'),
        failed: sum('requests_failed'),
        error_rate: requests ? sum('requests_failed') / requests : null,
      },
      tokens: {
        input: sum('input_tokens'),
        output: sum('output_tokens'),
        total: sum('input_tokens') + sum('output_tokens'),
      },
      mean_batch_duration_seconds: finishedCount
        ? Math.round(sum('batch_duration_sum') / finishedCount)
        : null,
      storage: { files: storedFiles, bytes: storedBytes },
    };
  });

  router.get('/batches', async (ctx) => {
    const limit = parseLimit(ctx.query.limit, 20, 100);
    const status = ctx.query.status;
    if (status !== undefined && !isBatchStatus(status)) {
      throw badRequest(
        `Invalid 'status': expected one of ${BATCH_STATUSES.join(', ')}.`,
        'status',
        'invalid_value',
      );
    }
    const { data, hasMore } = await batches.list(ctx.state.principal.tenantId, {
      limit,
      status,
      after: queryString(ctx.query.after, 'after'),
    });
    const now = nowSeconds();
    ctx.body = listBody(
      data.map((b) => toView(b, temporalUrl, now)),
      hasMore,
    );
  });

  // Operators see every tenant's deliveries (each with its owner), tenants their own.
  router.get('/webhooks', async (ctx) => {
    const { tenantId, role } = ctx.state.principal;
    const data = await webhooks.recentDeliveries(
      role === 'operator' ? null : tenantId,
      parseLimit(ctx.query.limit, 50, 200),
    );
    ctx.body = { object: 'dashboard.webhooks', data };
  });

  // The upstream pools now, summed over the worker processes (the same for every tenant: the GPUs are shared).
  router.get('/pools', async (ctx) => {
    ctx.body = { object: 'dashboard.pools', data: await poolStats.current() };
  });

  router.get('/batches/:id', async (ctx) => {
    const batch = await batches.get(ctx.state.principal.tenantId, ctx.params.id);
    ctx.body = toView(batch, temporalUrl, nowSeconds());
  });

  return router;
}
