// Names shared by the workflow, the worker and the API client. Imported by workflow code: no Node built-ins here.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { BatchEndpoint, BatchStatus } from '../src/shared/openai';

export const WORKFLOW_TYPE = 'batchWorkflow';
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
}

/** A run of whole input lines: bytes [start, end) of the input file. */
export interface Chunk {
  index: number;
  start: number;
  end: number;
  lines: number;
}

export interface BatchProgress {
  status: BatchStatus;
  total: number;
  chunks: number;
  chunksDone: number;
}

export const progressQuery = defineQuery<BatchProgress>('progress');
/** Moves the batch to `cancelling` and answers once that is recorded; rejects when the batch already finished. */
export const cancelUpdate = defineUpdate<BatchStatus>('cancel');
