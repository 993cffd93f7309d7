import { Refused } from './errors';

/** One page of a list, newest or oldest first; `hasMore` says whether a next page exists. */
export interface Page<T> {
  data: T[];
  hasMore: boolean;
}

/** The row an `after` cursor names, which must be the caller's own; anything else refuses `after`. */
export async function resolveCursor<T>(
  after: string | undefined,
  what: 'File' | 'Batch' | 'WebhookEndpoint',
  isId: (id: string) => boolean,
  findOwned: (id: string) => Promise<T | null>,
): Promise<T | null> {
  if (after === undefined) return null;
  const row = isId(after) ? await findOwned(after) : null;
  if (!row) {
    throw new Refused(
      'invalid',
      `No such ${what} object for 'after': ${after.slice(0, 200)}`,
      'invalid_cursor',
      'after',
    );
  }
  return row;
}
