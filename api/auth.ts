import type { Middleware } from 'koa';
import type { ApiKeys, Principal } from '../src/auth/api-keys';
import { ApiError } from './errors';

export interface AuthState {
  principal: Principal;
}

/** Bearer API key; the principal's tenant owns everything created with it. */
export function requireApiKey(keys: ApiKeys): Middleware<AuthState> {
  return async (ctx, next) => {
    const header = ctx.get('authorization');
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) {
      throw new ApiError(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        'missing_api_key',
      );
    }
    const principal = await keys.authenticate(match[1]);
    if (!principal) throw new ApiError(401, 'Incorrect API key provided.', 'invalid_api_key');
    ctx.state.principal = principal;
    await next();
  };
}

/** After requireApiKey: only operator keys pass (what they read spans every tenant). */
export const requireOperator: Middleware<AuthState> = async (ctx, next) => {
  if (ctx.state.principal.role !== 'operator') {
    throw new ApiError(
      403,
      'This endpoint needs an operator key (besh keys create --operator); this key is a tenant key.',
      'permission_denied',
    );
  }
  await next();
};
