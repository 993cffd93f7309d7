// The batches table in memory, for workflow tests: status writes and admission follow the same rules as
// src/batches/status-store.ts (guarded by the lifecycle; at most N admitted, first created first).
import { INITIAL_STATUS, RUNNING_STATUSES, sourcesOf, type BatchStatus } from '../../src/batches/lifecycle';
import type { AdmissionOutcome, MoveOutcome } from '../../src/batches/status-store';

interface Row {
  created: number;
  status: BatchStatus;
  total: number;
  admitted: boolean;
}

export class FakeBatchStore {
  private readonly rows = new Map<string, Row>();
  /** Batch ids in the order they were admitted. */
  readonly admissions: string[] = [];
  /** The most batches that ever held a slot at once. */
  peakRunning = 0;

  constructor(private readonly maxRunning: number) {}

  /** What the API does before it starts a batch's workflow; batches are created in call order. */
  create(batchId: string): void {
    this.rows.set(batchId, { created: this.rows.size, status: INITIAL_STATUS, total: 0, admitted: false });
  }

  statusOf(batchId: string): BatchStatus {
    return this.row(batchId).status;
  }

  move(batchId: string, to: BatchStatus, details: { total?: number }): MoveOutcome {
    const row = this.row(batchId);
    let outcome: MoveOutcome;
    if (sourcesOf(to).includes(row.status)) outcome = 'moved';
    else if (row.status === to) outcome = 'unchanged';
    else return 'refused';
    row.status = to;
    if (details.total !== undefined) row.total = details.total;
    return outcome;
  }

  admit(batchId: string): AdmissionOutcome {
    const me = this.row(batchId);
    if (me.status === 'in_progress') return 'admitted';
    const waiting = sourcesOf('in_progress');
    if (!waiting.includes(me.status)) return 'gone';
    const rows = [...this.rows.values()];
    const running = rows.filter(
      (r) => r.admitted && (RUNNING_STATUSES as readonly BatchStatus[]).includes(r.status),
    ).length;
    const earlierWaiting = rows.some(
      (w) => waiting.includes(w.status) && w.total > 0 && w.created < me.created,
    );
    if (running >= this.maxRunning || earlierWaiting) return 'queued';
    me.status = 'in_progress';
    me.admitted = true;
    this.admissions.push(batchId);
    this.peakRunning = Math.max(this.peakRunning, running + 1);
    return 'admitted';
  }

  private row(batchId: string): Row {
    const row = this.rows.get(batchId);
    if (!row) throw new Error(`no batch ${batchId}`);
    return row;
  }
}
