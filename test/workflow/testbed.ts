// A Temporal server and the workflow bundle for workflow tests, and a worker per test on its own task queue.
import type { WorkflowHandle } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker, type WorkflowBundle } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import type { Activities } from '../../activities';
import { SEARCH_ATTRIBUTES, workflowIdFor } from '../../src/contract/batch-workflow';
import { temporalCliPath } from '../../temporal/dev-server';
import { batchWorkflow } from '../../workflows';

let runtimeInstalled = false;

/** Temporal's runtime, logging warnings only; once per process: mocha runs every file of the tier in one. */
export function installQuietRuntime(): void {
  if (runtimeInstalled) return;
  Runtime.install({ logger: new DefaultLogger('WARN') });
  runtimeInstalled = true;
}

export interface Testbed {
  env: TestWorkflowEnvironment;
  bundle: WorkflowBundle;
}

/**
 * The project's pinned Temporal CLI as a local dev server. Not the time-skipping test server: that one is
 * downloaded at run time, which this project's machines cannot do; the tests wait on events instead of time.
 */
export async function startTestbed(): Promise<Testbed> {
  installQuietRuntime();
  const [env, bundle] = await Promise.all([
    TestWorkflowEnvironment.createLocal({
      server: {
        executable: { type: 'existing-path', path: temporalCliPath() },
        searchAttributes: SEARCH_ATTRIBUTES,
        ip: '127.0.0.1',
      },
    }),
    bundleWorkflowCode({
      workflowsPath: require.resolve('../../workflows'),
      logger: new DefaultLogger('WARN'),
    }),
  ]);
  return { env, bundle };
}

/** Runs `body` against a worker of the batch workflows with `activities`, on a task queue of its own. */
export async function withWorker<T>(
  { env, bundle }: Testbed,
  activities: Activities,
  body: (taskQueue: string) => Promise<T>,
): Promise<T> {
  const taskQueue = `workflow-test-${randomUUID()}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: bundle,
    activities,
    // A cancellation reaches an activity with the answer to a heartbeat: send them without the usual delay.
    maxHeartbeatThrottleInterval: '50ms',
    defaultHeartbeatThrottleInterval: '50ms',
  });
  return worker.runUntil(body(taskQueue));
}

export const DAY_MS = 24 * 60 * 60 * 1000;

/** Starts a batch's workflow as the API does (id = batch id), with a window that closes at `expiresAtMs`. */
export function startBatch(
  { env }: Testbed,
  taskQueue: string,
  batchId: string,
  expiresAtMs = Date.now() + DAY_MS,
): Promise<WorkflowHandle<typeof batchWorkflow>> {
  return env.client.workflow.start(batchWorkflow, {
    taskQueue,
    workflowId: workflowIdFor(batchId),
    args: [
      { batchId, owner: 'owner-1', inputFileId: 'file-input', endpoint: '/v1/chat/completions', expiresAtMs },
    ],
  });
}
