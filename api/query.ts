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
