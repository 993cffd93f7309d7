import {
  Client,
  Connection,
  isGrpcDeadlineError,
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
import { EngineUnavailable, type BatchEngine, type RunState } from '../src/services/ports';
import { describeBatchRun } from '../activities/reconcile-batches';
import { batchWorkflow } from '../workflows/batch-workflow';

export async function connectClient(
  config: Pick<Config, 'temporalAddress' | 'temporalNamespace'>,
): Promise<Client> {
  const connection = await Connection.connect({ address: config.temporalAddress });
  return new Client({ connection, namespace: config.temporalNamespace });
}

/**
 * The services' workflow engine over Temporal: one batch workflow per batch, its id the batch id. Every call has
 * a deadline of TEMPORAL_CALL_TIMEOUT_SECONDS (a frozen server must not hold an API request), except the wait
 * for a run to close, which has its own.
 */
export class TemporalBatchEngine implements BatchEngine {
  constructor(
    private readonly client: Client,
    private readonly config: Pick<Config, 'taskQueue' | 'temporalCallTimeoutSeconds'>,
  ) {}

  /** A second start with the same id is rejected. */
  async start(input: BatchWorkflowInput): Promise<void> {
    await this.call(() =>
      this.client.workflow.start(batchWorkflow, {
        taskQueue: this.config.taskQueue,
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
      }),
    );
  }

  async abandon(batchId: string): Promise<void> {
    const reason = 'Its batch was not created: the start was answered after the API had given up.';
    await this.call(() => this.handle(batchId).terminate(reason)).catch(() => undefined);
  }

  async cancel(batchId: string): Promise<boolean> {
    try {
      await this.call(() => this.handle(batchId).executeUpdate(cancelUpdate));
      return true;
    } catch (err) {
      // The update's validator refused (finished or finalizing), or the run has closed.
      if (err instanceof WorkflowUpdateFailedError || err instanceof WorkflowNotFoundError) return false;
      throw err;
    }
  }

  describe(batchId: string): Promise<RunState> {
    return this.call(() => describeBatchRun(this.client, batchId));
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
    await this.call(() => this.client.workflowService.getSystemInfo({}));
  }

  /** One call under the deadline; past it, EngineUnavailable (a 503 for the client). */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await this.client.withDeadline(Date.now() + this.config.temporalCallTimeoutSeconds * 1000, fn);
    } catch (err) {
      if (isGrpcDeadlineError(err)) throw new EngineUnavailable();
      throw err;
    }
  }

  private handle(batchId: string) {
    return this.client.workflow.getHandle<typeof batchWorkflow>(workflowIdFor(batchId));
  }
}
