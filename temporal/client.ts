import {
  Client,
  Connection,
  WorkflowFailedError,
  WorkflowIdReusePolicy,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import { INITIAL_STATUS } from '../src/batches/lifecycle';
import type { Config } from '../src/config';
import {
  cancelUpdate,
  SA_ENDPOINT,
  SA_OWNER,
  SA_STATUS,
  workflowIdFor,
  type BatchWorkflowInput,
} from '../src/contract/batch-workflow';
import type { BatchEngine } from '../src/services/ports';
import { batchWorkflow } from '../workflows/batch-workflow';

export async function connectClient(
  config: Pick<Config, 'temporalAddress' | 'temporalNamespace'>,
): Promise<Client> {
  const connection = await Connection.connect({ address: config.temporalAddress });
  return new Client({ connection, namespace: config.temporalNamespace });
}

/** The services' workflow engine over Temporal: one batch workflow per batch, its id the batch id. */
export class TemporalBatchEngine implements BatchEngine {
  constructor(
    private readonly client: Client,
    private readonly taskQueue: string,
  ) {}

  /** A second start with the same id is rejected. */
  async start(input: BatchWorkflowInput): Promise<void> {
    await this.client.workflow.start(batchWorkflow, {
      taskQueue: this.taskQueue,
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

  async cancel(batchId: string): Promise<boolean> {
    try {
      await this.handle(batchId).executeUpdate(cancelUpdate);
      return true;
    } catch (err) {
      // The update's validator refused (finished or finalizing), or the run has closed.
      if (err instanceof WorkflowUpdateFailedError || err instanceof WorkflowNotFoundError) return false;
      throw err;
    }
  }

  async waitUntilClosed(batchId: string, timeoutMs: number): Promise<boolean> {
    // The abort ends the long poll on the history, so nothing keeps waiting after the answer.
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => {
        abort.abort();
        resolve(false);
      }, timeoutMs);
    });
    const closed = this.client
      .withAbortSignal(abort.signal, () => this.handle(batchId).result())
      .then(
        () => true,
        (err: unknown) => {
          if (abort.signal.aborted) return false;
          // Failed, cancelled, terminated or timed out, or gone altogether: closed all the same.
          if (err instanceof WorkflowFailedError || err instanceof WorkflowNotFoundError) return true;
          throw err;
        },
      );
    try {
      return await Promise.race([closed, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  async ping(): Promise<void> {
    await this.client.workflowService.getSystemInfo({});
  }

  private handle(batchId: string) {
    return this.client.workflow.getHandle<typeof batchWorkflow>(workflowIdFor(batchId));
  }
}
