import type { ListPage } from '../src/shared/openai';
import { badRequest } from './errors';

type QueryValue = string | string[] | undefined;

export function parseLimit(raw: QueryValue, fallback: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (typeof raw !== 'string' || !Number.isInteger(n) || n < 1 || n > max) {
    throw badRequest(`Invalid 'limit': expected an integer from 1 to ${max}.`, 'limit', 'invalid_value');
  }
  return n;
}

export function parseOrder(raw: QueryValue): 'asc' | 'desc' {
  if (raw === undefined) return 'desc';
  if (raw === 'asc' || raw === 'desc') return raw;
  throw badRequest("Invalid 'order': expected 'asc' or 'desc'.", 'order', 'invalid_value');
}

/** A parameter given at most once: a repeated one (`?after=a&after=b`) is ambiguous, so it is refused. */
export function queryString(raw: QueryValue, name: string): string | undefined {
  if (Array.isArray(raw)) throw badRequest(`Invalid '${name}': given more than once.`, name, 'invalid_value');
  return raw;
}

export const listBody = <T extends { id: string }>(data: T[], hasMore: boolean): ListPage<T> => ({
  object: 'list',
  data,
  first_id: data[0]?.id ?? null,
  last_id: data.at(-1)?.id ?? null,
  has_more: hasMore,
});
