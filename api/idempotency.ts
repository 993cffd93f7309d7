import { createHash } from 'node:crypto';
import type { ParameterizedContext } from 'koa';
import { checkIdempotencyKey, KeyInFlight, type IdempotencyService } from '../src/services/idempotency';
import type { AuthState } from './auth';
import { ApiError } from './errors';

/**
 * How a creating route answers under the request's `Idempotency-Key`: `respond(digest, create)` runs `create`
 * once per tenant and key and answers its object, or replays the answer of an earlier request with the same key
 * (with `Idempotent-Replayed: true`). The key is checked at once, before the route reads the body; `digest`
 * hashes what the request asks and is computed only when a key was sent.
 */
export function idempotently(ctx: ParameterizedContext<AuthState>, idempotency: IdempotencyService) {
  const header = ctx.request.headers['idempotency-key'];
  const key = header === undefined ? undefined : checkIdempotencyKey(String(header));
  return async (digest: () => Promise<string> | string, create: () => Promise<object>): Promise<void> => {
    if (key === undefined) {
      ctx.body = await create();
      return;
    }
    // The route is part of what the request asks: one key cannot answer a file to a batch request.
    const fingerprint = createHash('sha256')
      .update(`${ctx.method} ${ctx.routerPath ?? ctx.path}\n${await digest()}`)
      .digest('hex');
    try {
      const { response, replayed } = await idempotency.once(
        ctx.state.principal.tenantId,
        key,
        fingerprint,
        create,
      );
      if (replayed) ctx.set('Idempotent-Replayed', 'true');
      ctx.body = response;
    } catch (err) {
      if (!(err instanceof KeyInFlight)) throw err;
      // 409 as Stripe answers it, but retryable: the retry gets the first request's object once it is done.
      const inUse = new ApiError(
        409,
        'A request with this Idempotency-Key is still being processed; retry in a moment.',
        'idempotency_key_in_use',
      );
      ctx.status = inUse.status;
      ctx.body = inUse.body();
      ctx.set('x-should-retry', 'true');
      ctx.set('retry-after', '1');
    }
  };
}
