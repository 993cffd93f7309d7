import { MockActivityEnvironment } from '@temporalio/testing';
import type { ActivityDeps } from '../../activities/deps';
import { validateInputActivity } from '../../activities/validate-input';
import type { Config } from '../../src/config';
import type { ValidationResult } from '../../src/contract/batch-workflow';
import type { BlobStore } from '../../src/storage/blob-store';

/**
 * Runs the validateInput activity on a stored file, for a batch that awaits its run. It reads only the blob
 * store and the batch's status, so the rest of its dependencies are left out.
 */
export function validateStoredFile(
  config: Config,
  blobs: BlobStore,
  inputFileId: string,
  endpoint: string,
): Promise<ValidationResult> {
  const deps: ActivityDeps = {
    config,
    blobs,
    db: { getRepository: () => ({ findOne: async () => ({ status: 'validating' }) }) } as never,
    parts: {} as never,
    pools: {} as never,
    draining: new AbortController().signal,
    stops: {} as never,
  };
  return new MockActivityEnvironment().run(validateInputActivity(deps), {
    batchId: 'batch_validating',
    inputFileId,
    endpoint,
  });
}
