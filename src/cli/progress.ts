import type { BatchStatus, RequestCounts } from '../shared/openai';

/** `12s`, `3m05s`, `1h02m`: the precision a person waiting needs. */
export function formatDuration(ms: number): string {
  const s = Math.ceil(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * One progress line, e.g. `[#####.....] 45% 450/1000 done, 3 failed, ETA 12s`. "Done" counts failed lines too:
 * both are finished work. The ETA assumes the rate so far holds; `?` until the first line is done.
 */
export function renderProgress(counts: RequestCounts, elapsedMs: number, width = 20): string {
  const { total, failed } = counts;
  const done = Math.min(counts.completed + failed, total);
  const complete = total > 0 && done === total;
  // Rounded for the eye, but full and 100% only when every line is in.
  const filled = complete ? width : Math.min(width - 1, total > 0 ? Math.round((done * width) / total) : 0);
  const percent = complete ? 100 : total > 0 ? Math.min(99, Math.floor((done * 100) / total)) : 0;
  const eta = complete
    ? '0s'
    : done > 0 && elapsedMs > 0
      ? formatDuration(((total - done) * elapsedMs) / done)
      : '?';
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${percent}% ${done}/${total} done, ${failed} failed, ETA ${eta}`;
}

export interface ProgressOutput {
  isTTY?: boolean;
  write(text: string): unknown;
}

/**
 * Shows a batch's progress: on a terminal one line redrawn in place; elsewhere (logs, CI) a plain line when the
 * status changes, and when the counts change at most every `plainIntervalMs`.
 */
export class ProgressReporter {
  private startedAt: number | null = null;
  private drawn = false;
  private lastStatus: BatchStatus | null = null;
  private lastCounts = '';
  private lastPlainAt = -Infinity;

  constructor(
    private readonly out: ProgressOutput,
    private readonly now: () => number = Date.now,
    private readonly plainIntervalMs = 5000,
  ) {}

  update(status: BatchStatus, counts: RequestCounts): void {
    const now = this.now();
    // The rate is measured from when requests started going out, not from validation or the queue.
    if (this.startedAt === null && status !== 'validating') this.startedAt = now;
    const line =
      counts.total > 0 ? `${status} ${renderProgress(counts, now - (this.startedAt ?? now))}` : status;
    if (this.out.isTTY) {
      this.out.write(`\r${line}\x1b[K`);
      this.drawn = true;
      return;
    }
    const key = `${counts.total}/${counts.completed}/${counts.failed}`;
    const statusChanged = status !== this.lastStatus;
    if (statusChanged || (key !== this.lastCounts && now - this.lastPlainAt >= this.plainIntervalMs)) {
      this.out.write(`${line}\n`);
      this.lastStatus = status;
      this.lastCounts = key;
      this.lastPlainAt = now;
    }
  }

  /** Ends the redrawn line so what follows starts on its own. */
  finish(): void {
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}
