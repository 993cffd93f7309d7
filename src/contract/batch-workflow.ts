// The contract between the batch workflows, their activities, the API and the CLI: inputs, results, queries,
// updates and search attributes. A leaf module: imported by workflow code, so no Node built-ins here.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { BatchEndpoint, BatchError, BatchPriority, BatchStatus } from '../shared/openai';

/** A batch's workflow id is its batch id: one workflow per batch, found without a lookup. */
export const workflowIdFor = (batchId: string) => batchId;

export const SA_STATUS = defineSearchAttributeKey('BatchStatus', SearchAttributeType.KEYWORD);
export const SA_ENDPOINT = defineSearchAttributeKey('BatchEndpoint', SearchAttributeType.KEYWORD);
export const SA_MODEL = defineSearchAttributeKey('BatchModel', SearchAttributeType.KEYWORD);
export const SA_OWNER = defineSearchAttributeKey('BatchOwner', SearchAttributeType.KEYWORD);
export const SEARCH_ATTRIBUTES = [SA_STATUS, SA_ENDPOINT, SA_MODEL, SA_OWNER];

export interface BatchWorkflowInput {
  batchId: string;
  owner: string;
  inputFileId: string;
  endpoint: BatchEndpoint;
  /** Unix milliseconds at which the completion window closes. */
  expiresAtMs: number;
  /** Absent in runs started before priorities: those batches are `normal`. */
  priority?: BatchPriority;
}

/** A run of whole input lines: bytes [start, end) of the input file. */
export interface Chunk {
  index: number;
  start: number;
  end: number;
  lines: number;
}

export interface ValidateInput {
  /** Validation starts only while this batch awaits it (its row exists and is unfinished). */
  batchId: string;
  inputFileId: string;
  endpoint: string;
}

/** validateInput's failure type when its batch no longer awaits the run: the run then ends doing nothing. */
export const BATCH_GONE = 'BatchGone';

/** A good file's plan (chunks as byte ranges, never request bodies), or the problems found with their lines. */
export type ValidationResult =
  | {
      ok: true;
      total: number;
      model: string;
      chunks: Chunk[];
      /** How many chunks run at once. */
      window: number;
      heartbeatTimeoutSeconds: number;
    }
  | { ok: false; errors: BatchError[] };

export interface SetStatusInput {
  batchId: string;
  status: BatchStatus;
  total?: number;
  model?: string;
  errors?: BatchError[];
}

export interface ProcessChunkInput {
  batchId: string;
  owner: string;
  inputFileId: string;
  endpoint: string;
  chunk: Chunk;
  /** The batch's share of the worker's slots (see FairLimiter); absent in chunks scheduled before priorities. */
  priority?: BatchPriority;
  /** Unix milliseconds at which the batch's completion window closes: earlier deadlines go first in a priority. */
  deadlineMs?: number;
}

export interface ChunkResult {
  completed: number;
  failed: number;
}

/** What a request that never got an answer says in the error file. */
export interface MissingLine {
  code: string;
  message: string;
}

export interface FinalizeInput {
  batchId: string;
  inputFileId: string;
  chunks: Chunk[];
  /** Chunks that may lack lines (cancelled, expired or failed): their unanswered requests get `missing`. */
  incomplete: number[];
  missing: MissingLine | null;
}

export interface FinalizeResult {
  completed: number;
  failed: number;
  outputFileId: string | null;
  errorFileId: string | null;
}

/** What one run of the cleanup workflow freed. */
export interface CleanupReport {
  expiredFiles: number;
  freedBytes: number;
  /** Batches whose leftover chunk segments were removed (the name predates segments; kept for recorded runs). */
  orphanedPartDirs: number;
  staleTempFiles: number;
}

export interface BatchProgress {
  status: BatchStatus;
  total: number;
  chunks: number;
  chunksDone: number;
}

export const progressQuery = defineQuery<BatchProgress>('progress');
/** Moves the batch to `cancelling` and answers once that is recorded; rejects when the batch cannot be cancelled. */
export const cancelUpdate = defineUpdate<BatchStatus>('cancel');
