import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { LessThanOrEqual, type DataSource } from 'typeorm';
import { IdempotencyKeyEntity, type IdempotencyKeyRow } from '../db/entities';
import { Refused } from './errors';

/** How long a key answers with the object of its first request (Stripe's and OpenAI's 24 hours). */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60;
/**
 * A key still in flight after this long belongs to a request that died with its process; the next request with
 * it takes it over. Far longer than the slowest upload takes to be checked and stored.
 */
const ABANDONED_AFTER_SECONDS = 10 * 60;
/** How long a request waits for the first request with its key; under the 60 s proxies allow by default. */
const WAIT_MS = 30_000;
const KEY_PATTERN = /^[\x20-\x7e]{1,255}$/;

/** The key of a request, as sent in its `Idempotency-Key` header: 1 to 255 printable ASCII characters. */
export function checkIdempotencyKey(key: string): string {
  if (!KEY_PATTERN.test(key)) {
    throw new Refused(
      'invalid',
      'The Idempotency-Key header must be 1 to 255 printable ASCII characters.',
      'invalid_idempotency_key',
    );
  }
  return key;
}

/** Sorted keys at every level, so that the same JSON body hashes the same whatever its key order. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (typeof value !== 'object' || value === null) return value;
  const object = value as Record<string, unknown>;
  return Object.fromEntries(
    Object.keys(object)
      .sort()
      .map((k) => [k, canonical(object[k])]),
  );
}

/** What a JSON request asks, hashed. */
export const digestJson = (body: unknown) =>
  createHash('sha256')
    .update(JSON.stringify(canonical(body)))
    .digest('hex');

/**
 * What an upload asks, hashed: the file's bytes, its name and the form fields. Not the raw body, whose multipart
 * boundary differs on every retry.
 */
export async function digestUpload(
  file: { path: string; filename: string },
  fields: Record<string, string>,
): Promise<string> {
  const hash = createHash('sha256').update(digestJson({ filename: file.filename, fields }));
  for await (const chunk of fs.createReadStream(file.path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The first request with the key is still running after the wait; the same request can be retried. */
export class KeyInFlight extends Error {
  override readonly name = 'KeyInFlight';
}

export interface Outcome<T> {
  response: T;
  /** True when this is the answer of an earlier request with the same key. */
  replayed: boolean;
}

const now = () => Math.floor(Date.now() / 1000);

/** Rows created at or before these times no longer hold their key. */
function cutoffs(at: number) {
  return { expiredBefore: at - IDEMPOTENCY_TTL_SECONDS, abandonedBefore: at - ABANDONED_AFTER_SECONDS };
}

function holdsKey(row: IdempotencyKeyRow, at: number): boolean {
  const { expiredBefore, abandonedBefore } = cutoffs(at);
  return row.createdAt > expiredBefore && (row.state === 'done' || row.createdAt > abandonedBefore);
}

/**
 * Creating requests that can be retried safely: the first request with a tenant's key runs, and every later one
 * with the same key and the same request answers what the first answered, without running again, for 24 hours.
 * A request that fails releases its key: nothing was created (the services undo their partial work), so a
 * retry, corrected or not, may run. Only successes are kept; they are the answers a retry must not repeat.
 */
export class IdempotencyService {
  private readonly keys;

  constructor(
    private readonly db: DataSource,
    private readonly timing: { waitMs: number; pause: (ms: number) => Promise<unknown> } = {
      waitMs: WAIT_MS,
      pause: sleep,
    },
  ) {
    this.keys = db.getRepository(IdempotencyKeyEntity);
  }

  /**
   * Runs `create` unless the key already answered the same `fingerprint` (then replays that answer) or is taken
   * by a request still running (then waits for its answer, at most the wait, before throwing KeyInFlight).
   * The same key with another fingerprint is refused.
   */
  async once<T>(
    owner: string,
    key: string,
    fingerprint: string,
    create: () => Promise<T>,
  ): Promise<Outcome<T>> {
    const deadline = Date.now() + this.timing.waitMs;
    for (let pause = 25; ; pause = Math.min(2 * pause, 500)) {
      const claimedAt = await this.claim(owner, key, fingerprint);
      if (claimedAt !== null) {
        return { response: await this.runClaimed(owner, key, claimedAt, create), replayed: false };
      }
      const row = await this.keys.findOneBy({ owner, key });
      // Released or expired since the claim was refused: claim it again.
      if (!row || !holdsKey(row, now())) continue;
      if (row.fingerprint !== fingerprint) {
        throw new Refused(
          'invalid',
          'This Idempotency-Key was already used with a different request; use another key for a different request.',
          'idempotency_key_reused',
        );
      }
      if (row.state === 'done') return { response: JSON.parse(row.response!) as T, replayed: true };
      if (Date.now() >= deadline)
        throw new KeyInFlight('A request with this Idempotency-Key is still running.');
      await this.timing.pause(pause);
    }
  }

  /**
   * Takes the key with one statement, atomic on PostgreSQL and SQLite: a new row, or over a row that no longer
   * holds it. Answers the claim's time, or null when another request holds the key.
   */
  private async claim(owner: string, key: string, fingerprint: string): Promise<number | null> {
    const at = now();
    const [sql, params] = this.db.driver.escapeQueryWithParameters(
      `INSERT INTO idempotency_keys (owner, idempotency_key, fingerprint, state, response, created_at)
       VALUES (:owner, :key, :fingerprint, 'in_flight', NULL, :at)
       ON CONFLICT (owner, idempotency_key) DO UPDATE
         SET fingerprint = excluded.fingerprint, state = excluded.state, response = NULL, created_at = excluded.created_at
         WHERE idempotency_keys.created_at <= :expiredBefore
            OR (idempotency_keys.state = 'in_flight' AND idempotency_keys.created_at <= :abandonedBefore)
       RETURNING created_at`,
      { owner, key, fingerprint, at, ...cutoffs(at) },
    );
    const claimed: unknown[] = await this.db.query(sql, params);
    return claimed.length > 0 ? at : null;
  }

  private async runClaimed<T>(
    owner: string,
    key: string,
    claimedAt: number,
    create: () => Promise<T>,
  ): Promise<T> {
    // createdAt names this claim: a request that outlived its claim must not touch the next one.
    const claim = { owner, key, createdAt: claimedAt, state: 'in_flight' as const };
    let response: T;
    try {
      response = await create();
    } catch (err) {
      // The client must see why it failed; a key left claimed by a failed release frees itself when abandoned.
      await this.keys.delete(claim).catch(() => undefined);
      throw err;
    }
    await this.keys.update(claim, { state: 'done', response: JSON.stringify(response) });
    return response;
  }
}

/** Deletes the keys past their 24 hours: they no longer answer anything. */
export async function deleteExpiredIdempotencyKeys(db: DataSource): Promise<void> {
  await db
    .getRepository(IdempotencyKeyEntity)
    .delete({ createdAt: LessThanOrEqual(cutoffs(now()).expiredBefore) });
}
