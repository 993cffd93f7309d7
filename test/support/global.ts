// Mocha global fixture: one real Temporal dev server and the workflow bundle for the whole run; the moto S3 server
// (test/support/s3.ts) starts on first use and stops here.
import { bundleWorkflowCode, Runtime, DefaultLogger } from '@temporalio/worker';
import fs from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../../src/paths';
import { startDevServer, type DevServer } from '../../temporal/dev-server';
import { freePort } from './ports';
import { stopMoto } from './s3';

let server: DevServer | undefined;

export const testOutputDir = path.join(projectRoot, 'test-output');

export async function mochaGlobalSetup() {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  fs.mkdirSync(testOutputDir, { recursive: true });
  server = await startDevServer({
    port: await freePort(),
    uiPort: null,
    dbFile: null,
    logFile: path.join(testOutputDir, 'temporal.log'),
  });
  process.env.TEST_TEMPORAL_ADDRESS = server.address;
  const bundle = await bundleWorkflowCode({
    workflowsPath: require.resolve('../../workflows'),
    logger: new DefaultLogger('WARN'),
  });
  const bundlePath = path.join(testOutputDir, 'workflow-bundle.js');
  fs.writeFileSync(bundlePath, bundle.code);
  process.env.TEST_WORKFLOW_BUNDLE = bundlePath;
}

export async function mochaGlobalTeardown() {
  await Promise.all([server?.stop(), stopMoto()]);
}
