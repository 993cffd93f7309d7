// A Temporal server and the workflow bundle for workflow tests, and a worker per test on its own task queue.
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker, type WorkflowBundle } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import type { Activities } from '../../activities';
import { SEARCH_ATTRIBUTES } from '../../src/contract/batch-workflow';
import { temporalCliPath } from '../../temporal/dev-server';

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
