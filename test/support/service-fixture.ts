import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DataSource } from 'typeorm';
import type { BatchWorkflowInput } from '../../src/contract/batch-workflow';
import { openDatabase } from '../../src/db/data-source';
import { BatchService } from '../../src/services/batch-service';
import { FileService } from '../../src/services/file-service';
import type { BatchEngine, RunState } from '../../src/services/ports';
import type { FileObject } from '../../src/shared/openai';
import { LocalBlobStore } from '../../src/storage/local-blob-store';

/** A workflow engine that records what it was asked; each answer can be replaced by the test. */
export class FakeBatchEngine implements BatchEngine {
  readonly started: BatchWorkflowInput[] = [];
  readonly abandoned: string[] = [];
  readonly cancelled: string[] = [];
  readonly described: string[] = [];
  /** Each batch's run: running once started, unknown to the engine otherwise; a test may end it. */
  readonly runs = new Map<string, RunState>();
  readonly waited: Array<{ batchId: string; timeoutMs: number }> = [];
  /** Rejects every start with this error when set. */
  refuseStart: Error | null = null;
  /** What a cancel does and answers; the real run records `cancelling` before it answers true. */
  onCancel: (batchId: string) => Promise<boolean> = async () => true;
  /** Whether the run closes within the wait; a real run records its final status before it closes. */
  onWait: (batchId: string) => Promise<boolean> = async () => true;
  /** What describe answers; by default the run as `runs` has it. */
  onDescribe: (batchId: string) => Promise<RunState> = async (id) =>
    this.runs.get(id) ?? { state: 'not_found' };

  async start(input: BatchWorkflowInput): Promise<void> {
    if (this.refuseStart) throw this.refuseStart;
    this.started.push(input);
    this.runs.set(input.batchId, { state: 'running' });
  }

  async abandon(batchId: string): Promise<void> {
    this.abandoned.push(batchId);
  }

  async describe(batchId: string): Promise<RunState> {
    this.described.push(batchId);
    return this.onDescribe(batchId);
  }

  async cancel(batchId: string): Promise<boolean> {
    this.cancelled.push(batchId);
    return this.onCancel(batchId);
  }

  async waitUntilClosed(batchId: string, timeoutMs: number): Promise<boolean> {
    this.waited.push({ batchId, timeoutMs });
    return this.onWait(batchId);
  }

  async ping(): Promise<void> {}
}

export const STOP_WAIT_MS = 1234;

export interface ServiceFixture {
  db: DataSource;
  blobs: LocalBlobStore;
  engine: FakeBatchEngine;
  batches: BatchService;
  files: FileService;
  /** Writes `content` where an upload would have been spooled; returns its path. */
  spool(content: string): string;
  /** Uploads a valid batch input file of `lines` chat requests. */
  uploadBatchInput(owner: string, lines?: number): Promise<FileObject>;
  close(): Promise<void>;
}

/** The services over a fresh SQLite database and blob folder in a temporary directory, with a fake engine. */
export async function openServiceFixture(): Promise<ServiceFixture> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'besh-services-'));
  const db = await openDatabase({ databaseUrl: undefined, sqlitePath: path.join(dir, 'besh.sqlite') });
  const blobs = new LocalBlobStore(path.join(dir, 'files'));
  const spoolDir = path.join(dir, 'spool');
  fs.mkdirSync(spoolDir);
  const engine = new FakeBatchEngine();
  const files = new FileService(db, blobs, {
    maxUploadBytes: 1024 * 1024,
    maxLineBytes: 64 * 1024,
    maxUploadLines: 100_000,
    maxExpansionRatio: 1000,
    spoolDir,
  });
  let spooled = 0;
  const spool = (content: string) => {
    const file = path.join(spoolDir, `upload-${++spooled}`);
    fs.writeFileSync(file, content);
    return file;
  };
  return {
    db,
    blobs,
    engine,
    batches: new BatchService(db, blobs, engine, STOP_WAIT_MS, 0),
    files,
    spool,
    uploadBatchInput: (owner, lines = 2) =>
      files.upload(owner, {
        spoolPath: spool(
          Array.from({ length: lines }, (_, i) =>
            JSON.stringify({
              custom_id: `r${i}`,
              method: 'POST',
              url: '/v1/chat/completions',
              body: { model: 'llama', messages: [{ role: 'user', content: `hi ${i}` }] },
            }),
          ).join('\n') + '\n',
        ),
        filename: 'input.jsonl',
        purpose: 'batch',
      }),
    async close() {
      await db.destroy();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
