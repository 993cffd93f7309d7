import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import fs from 'node:fs';
import path from 'node:path';

/**
 * Where `make build` puts the prebuilt workflow bundle: beside the compiled workflows, so a worker started from
 * dist/ uses it (bundling at start costs seconds and ~300 MB of peak memory) while one run from sources never
 * picks up a stale bundle.
 */
export const compiledBundlePath = path.join(__dirname, '..', 'workflow-bundle.js');

if (require.main === module) {
  bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows'),
    logger: new DefaultLogger('WARN'),
  }).then(
    ({ code }) => {
      fs.writeFileSync(compiledBundlePath, code);
      console.log(
        `workflow bundle written to ${compiledBundlePath} (${(code.length / 1024).toFixed(0)} KiB)`,
      );
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
