import type { DataSource, EntityManager } from 'typeorm';
import { bucketOf, type StatsDelta } from './columns';

/** `$1, $2…` for PostgreSQL, `?` for SQLite. */
const placeholder = (db: EntityManager, i: number) =>
  db.connection.options.type === 'postgres' ? `$${i}` : '?';

/** Adds `delta` to the owner's bucket containing `at` (unix seconds); one upsert, atomic on both databases. */
export async function addToBucket(
  db: EntityManager,
  owner: string,
  at: number,
  delta: StatsDelta,
): Promise<void> {
  const entries = Object.entries(delta).filter(([, v]) => v);
  if (entries.length === 0) return;
  const cols = entries.map(([c]) => c);
  const values = [bucketOf(at), owner, ...entries.map(([, v]) => v)];
  const ph = values.map((_, i) => placeholder(db, i + 1)).join(', ');
  await db.query(
    `INSERT INTO stats_buckets (bucket_start, owner, ${cols.join(', ')}) VALUES (${ph})
     ON CONFLICT (bucket_start, owner) DO UPDATE SET ${cols.map((c) => `${c} = stats_buckets.${c} + excluded.${c}`).join(', ')}`,
    values,
  );
}

/**
 * Counts an event once, however often it is reported (a retried activity, a repeated request): the ledger row
 * and the bucket increment commit together or not at all.
 */
export async function recordOnce(
  db: DataSource,
  sourceId: string,
  owner: string,
  at: number,
  delta: StatsDelta,
) {
  await db.transaction(async (tx) => {
    const inserted: unknown[] = await tx.query(
      `INSERT INTO stats_ledger (source_id, created_at) VALUES (${placeholder(tx, 1)}, ${placeholder(tx, 2)})
       ON CONFLICT (source_id) DO NOTHING RETURNING source_id`,
      [sourceId, at],
    );
    if (inserted.length > 0) await addToBucket(tx, owner, at, delta);
  });
}
