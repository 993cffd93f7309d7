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

/** The row an `after` cursor names, which must be the caller's own; anything else is a 400 on `after`. */
export async function parseCursor<T>(
  raw: QueryValue,
  what: 'File' | 'Batch',
  isId: (id: string) => boolean,
  findOwned: (id: string) => Promise<T | null>,
): Promise<T | null> {
  if (typeof raw !== 'string') return null;
  const row = isId(raw) ? await findOwned(raw) : null;
  if (!row)
    throw badRequest(`No such ${what} object for 'after': ${raw.slice(0, 200)}`, 'after', 'invalid_cursor');
  return row;
}

export const listBody = <T extends { id: string }>(data: T[], hasMore: boolean): ListPage<T> => ({
  object: 'list',
  data,
  first_id: data[0]?.id ?? null,
  last_id: data.at(-1)?.id ?? null,
  has_more: hasMore,
});
