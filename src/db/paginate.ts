import { Brackets, type ObjectLiteral, type SelectQueryBuilder } from 'typeorm';

export interface Cursor {
  createdAt: number;
  id: string;
}

/**
 * Keyset pagination over (created_at, id): stable while rows are added, and an index walk instead of OFFSET.
 * Fetches one row more than `limit` to learn whether there is a next page.
 */
export async function page<T extends ObjectLiteral & Cursor>(
  qb: SelectQueryBuilder<T>,
  opts: { limit: number; order: 'asc' | 'desc'; after: Cursor | null },
): Promise<{ rows: T[]; hasMore: boolean }> {
  const a = qb.alias;
  const cmp = opts.order === 'desc' ? '<' : '>';
  if (opts.after) {
    const { createdAt, id } = opts.after;
    qb.andWhere(
      new Brackets((w) =>
        w
          .where(`${a}.createdAt ${cmp} :cAt`, { cAt: createdAt })
          .orWhere(`(${a}.createdAt = :cAt AND ${a}.id ${cmp} :cId)`, { cAt: createdAt, cId: id }),
      ),
    );
  }
  const dir = opts.order === 'desc' ? 'DESC' : 'ASC';
  const rows = await qb
    .orderBy(`${a}.createdAt`, dir)
    .addOrderBy(`${a}.id`, dir)
    .take(opts.limit + 1)
    .getMany();
  return { rows: rows.slice(0, opts.limit), hasMore: rows.length > opts.limit };
}
