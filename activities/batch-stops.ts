import { In, type DataSource } from 'typeorm';
import { HALTED_STATUSES } from '../src/batches/lifecycle';
import { BatchEntity } from '../src/db/entities';

/** How often a worker asks the database which of its batches were stopped. */
const POLL_MS = 250;

export class BatchStopped extends Error {
  constructor(readonly batchId: string) {
    super(`batch ${batchId} was stopped`);
    this.name = 'BatchStopped';
  }
}

/**
 * Tells a worker's chunks, within a fraction of a second, that their batch was cancelled (or ended), on every
 * worker at once: the status is in the database they all share. Temporal's own activity cancellation arrives
 * only with the answer to a heartbeat, and the SDK holds heartbeats back for most of the heartbeat timeout, so
 * alone it lets in-flight requests run on for seconds after `cancelling` is recorded.
 * One query per poll for all the batches this worker runs, and no polling while it runs none.
 */
export class BatchStops {
  private readonly watched = new Map<string, { controller: AbortController; holders: number }>();
  private timer: NodeJS.Timeout | null = null;
  private polling = false;

  constructor(
    private readonly db: DataSource,
    private readonly everyMs = POLL_MS,
  ) {}

  /** A signal that aborts with BatchStopped once the batch halts; `release()` when the chunk is done with it. */
  watch(batchId: string): { signal: AbortSignal; release(): void } {
    let entry = this.watched.get(batchId);
    if (!entry) {
      entry = { controller: new AbortController(), holders: 0 };
      this.watched.set(batchId, entry);
    }
    entry.holders++;
    this.timer ??= setInterval(() => void this.poll(), this.everyMs);
    let released = false;
    const held = entry;
    return {
      signal: held.controller.signal,
      release: () => {
        if (released) return;
        released = true;
        if (--held.holders === 0 && this.watched.get(batchId) === held) this.watched.delete(batchId);
        if (this.watched.size === 0) this.close();
      },
    };
  }

  /** Stops polling; signals already handed out stay as they are. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async poll(): Promise<void> {
    if (this.polling || this.watched.size === 0) return;
    this.polling = true;
    try {
      const rows = await this.db.getRepository(BatchEntity).find({
        select: { id: true },
        where: { id: In([...this.watched.keys()]), status: In(HALTED_STATUSES) },
      });
      for (const { id } of rows) {
        this.watched.get(id)?.controller.abort(new BatchStopped(id));
      }
    } catch {
      // The database is unreachable: Temporal's cancellation still arrives, only later.
    } finally {
      this.polling = false;
    }
  }
}
