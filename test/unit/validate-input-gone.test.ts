// validateInput runs only for a batch that awaits its run: a start that reached Temporal after the API gave up
// (and deleted the batch), or after the batch was failed for want of a run, must do nothing.
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import type { ActivityDeps } from '../../activities/deps';
import { validateInputActivity } from '../../activities/validate-input';
import { moveBatch } from '../../src/batches/status-store';
import { loadConfig } from '../../src/config';
import { BATCH_GONE, type ValidationResult } from '../../src/contract/batch-workflow';
import { BatchEntity } from '../../src/db/entities';
import { openServiceFixture, type ServiceFixture } from '../support/service-fixture';

describe('validateInput: only for a batch that awaits its run', () => {
  let f: ServiceFixture;
  let deps: ActivityDeps;
  beforeEach(async () => {
    f = await openServiceFixture();
    deps = {
      config: loadConfig({}),
      db: f.db,
      blobs: f.blobs,
      parts: {} as never,
      pools: {} as never,
      draining: new AbortController().signal,
      stops: {} as never,
    };
  });
  afterEach(async () => f.close());

  async function created() {
    const file = await f.uploadBatchInput('tenant_a', 3);
    return f.batches.create('tenant_a', {
      inputFileId: file.id,
      endpoint: '/v1/chat/completions',
      completionWindow: '24h',
      windowSeconds: 86400,
      metadata: null,
      outputExpiresAfterSeconds: null,
    });
  }

  const validate = (batchId: string, inputFileId: string): Promise<ValidationResult> =>
    new MockActivityEnvironment().run(validateInputActivity(deps), {
      batchId,
      inputFileId,
      endpoint: '/v1/chat/completions',
    });

  /** A non-retryable BatchGone failure, before the input file was read (the file id names no blob). */
  const gone = (why: RegExp) => (err: unknown) => {
    assert.ok(err instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(err)}`);
    assert.equal(err.type, BATCH_GONE);
    assert.equal(err.nonRetryable, true);
    assert.match(err.message, why);
    return true;
  };

  it('plans a batch that awaits validation', async () => {
    const batch = await created();
    const result = await validate(batch.id, batch.input_file_id);
    assert.ok(result.ok);
    assert.equal(result.total, 3);
  });

  it('refuses at once when the batch does not exist (its creation was abandoned)', async () => {
    const batch = await created();
    await f.db.getRepository(BatchEntity).delete({ id: batch.id });
    await assert.rejects(validate(batch.id, 'file-never-read'), gone(/does not exist/));
  });

  it('refuses at once when the batch already ended', async () => {
    const batch = await created();
    assert.equal(await moveBatch(f.db, batch.id, 'failed'), 'moved');
    await assert.rejects(validate(batch.id, 'file-never-read'), gone(/is already failed/));
  });
});
