import { Client, Connection, WorkflowIdReusePolicy } from '@temporalio/client';
import type { Config } from '../src/config';
import {
  SA_ENDPOINT,
  SA_OWNER,
  SA_STATUS,
  workflowIdFor,
  type BatchWorkflowInput,
} from '../src/contract/batch-workflow';
import { INITIAL_STATUS } from '../src/batches/lifecycle';
import { batchWorkflow } from '../workflows/batch-workflow';

export async function connectClient(
  config: Pick<Config, 'temporalAddress' | 'temporalNamespace'>,
): Promise<Client> {
  const connection = await Connection.connect({ address: config.temporalAddress });
  return new Client({ connection, namespace: config.temporalNamespace });
}

/** Starts a batch's workflow; its id is the batch id, and a second start with the same id is rejected. */
export async function startBatchWorkflow(
  client: Client,
  taskQueue: string,
  input: BatchWorkflowInput,
): Promise<void> {
  await client.workflow.start(batchWorkflow, {
    taskQueue,
    workflowId: workflowIdFor(input.batchId),
    args: [input],
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    staticSummary: `Batch ${input.batchId} (${input.endpoint})`,
    staticDetails: `Input file ${input.inputFileId}; owner ${input.owner}`,
    typedSearchAttributes: [
      { key: SA_STATUS, value: INITIAL_STATUS },
      { key: SA_ENDPOINT, value: input.endpoint },
      { key: SA_OWNER, value: input.owner },
    ],
  });
}
