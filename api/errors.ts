import type { Middleware } from 'koa';
import { ParamError } from '../src/batches/create-params';
import { UploadError } from '../src/files/upload-error';
import { Refused, type RefusalKind } from '../src/services/errors';
import type { ErrorBody } from '../src/shared/openai';

/** An error whose message is safe to show the client, in OpenAI's shape. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
    readonly type = status === 401
      ? 'authentication_error'
      : status === 403
        ? 'permission_error'
        : status >= 500
          ? 'server_error'
          : 'invalid_request_error',
  ) {
    super(message);
  }

  body(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const badRequest = (
  message: string,
  param: string | null = null,
  code: string | null = 'invalid_request',
) => new ApiError(400, message, code, param);

const routeNotFound = (method: string, path: string) =>
  new ApiError(404, `Invalid URL (${method} ${path.slice(0, 200)})`, 'unknown_url');

/**
 * Last in the chain, after every router: a path some route serves, asked with another method, is a 405 with
 * `Allow` listing the methods it serves; any other path is a 404. The routers record every route whose path
 * matched in `ctx.matched` (middleware layers have no methods), whichever router they belong to.
 */
export const unmatchedRoute: Middleware = (ctx) => {
  const matched = (ctx as { matched?: { methods: string[] }[] }).matched ?? [];
  const allowed = [...new Set(matched.flatMap((layer) => layer.methods))].sort();
  if (allowed.length === 0) throw routeNotFound(ctx.method, ctx.path);
  ctx.set('Allow', allowed.join(', '));
  throw new ApiError(
    405,
    `Method ${ctx.method} is not allowed on ${ctx.path.slice(0, 200)}; allowed: ${allowed.join(', ')}.`,
    'method_not_allowed',
  );
};

const REFUSAL_STATUS: Record<RefusalKind, number> = {
  not_found: 404,
  invalid: 400,
  // OpenAI answers a request the object's state forbids with 400; the SDKs would retry a 409.
  conflict: 400,
  // 503, which the SDKs retry.
  retry_later: 503,
};

/** Errors that mean a dependency is down, so clients should retry: 503, which the SDKs retry. */
function isUnavailable(err: unknown): boolean {
  const e = err as { code?: string; name?: string; message?: string };
  return (
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', '57P01', '57P03', 'SQLITE_BUSY'].includes(e.code ?? '') ||
    e.name === 'ServiceError' ||
    e.name === 'ConnectionTimeoutError' ||
    /Connection terminated|timeout exceeded when trying to connect|database is locked/i.test(e.message ?? '')
  );
}

/** The error the client sees for `err`; anything not meant for clients is logged and answered generically. */
function toApiError(err: unknown, log: (msg: string, err: unknown) => void, where: string): ApiError {
  if (err instanceof ApiError) return err;
  // Refusals of the layers below: their messages, codes and params are written for the client.
  if (err instanceof Refused) return new ApiError(REFUSAL_STATUS[err.kind], err.message, err.code, err.param);
  if (err instanceof UploadError) return new ApiError(err.status, err.message, err.code, err.param);
  if (err instanceof ParamError) return badRequest(err.message, err.param, err.code);
  const httpErr = err as {
    status?: number;
    expose?: boolean;
    message?: string;
    code?: string;
    param?: string;
  };
  if (typeof httpErr.status === 'number' && httpErr.status < 500 && httpErr.expose) {
    // koa / bodyparser client errors (bad JSON, body too large): their messages are generic and safe.
    return new ApiError(
      httpErr.status,
      httpErr.message ?? 'Bad request',
      httpErr.code ?? null,
      httpErr.param ?? null,
    );
  }
  if (isUnavailable(err)) {
    log(`dependency unavailable on ${where}`, err);
    return new ApiError(503, 'The service is temporarily unavailable; please retry.', 'service_unavailable');
  }
  log(`unexpected error on ${where}`, err);
  return new ApiError(500, 'The server had an error while processing your request.', 'internal_error');
}

/** Turns every error into OpenAI's error body; nothing internal (stack, path, SQL) reaches the client. */
export function errorHandler(log: (msg: string, err: unknown) => void): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      const apiErr = toApiError(err, log, `${ctx.method} ${ctx.path}`);
      ctx.status = apiErr.status;
      ctx.body = apiErr.body();
      // 4xx answers are final: tell the SDKs not to retry them (they retry 409 and 429 by default).
      if (apiErr.status < 500 && apiErr.status !== 429) ctx.set('x-should-retry', 'false');
    }
  };
}
