import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from '../../src/paths';
import { startStack, type Stack } from '../support/stack';

const python = path.join(projectRoot, '.tools', 'pyvenv', 'bin', 'python');
const script = path.join(projectRoot, 'test', 'python', 'sdk_roundtrip.py');

/** What test/python/sdk_roundtrip.py prints: the parts of its one JSON object that are asserted here. */
interface Observed {
  openai_version: string;
  uploaded: { id: string; created_at: number; expires_at: number | null; purpose: string; status: string };
  processed: { id: string; status: string; bytes: number };
  listed_ids: string[];
  model_ids: string[];
  partial_custom_ids: string[];
  batch: {
    status: string;
    metadata: Record<string, string> | null;
    priority_at_create: string | null;
    priority: string | null;
    request_counts: { total: number; completed: number; failed: number } | null;
    error_file_id: string | null;
  };
  output_line_count: number;
  output_custom_ids: string[];
  output_status_codes: number[];
  errors: string[];
}

describe('The official Python openai SDK against BESH', function () {
  this.timeout(120_000);
  let s: Stack;
  before(async function () {
    if (!fs.existsSync(python)) {
      console.log(`    skipped: ${python} is missing; \`make tools\` creates it`);
      this.skip();
    }
    s = await startStack();
  });
  after(async () => s?.close());

  it('uploads, lists, runs a batch, downloads and gets typed errors @smoke', async () => {
    const { stdout } = await promisify(execFile)(python, [script], {
      env: { ...process.env, BESH_BASE_URL: s.baseURL, BESH_API_KEY: s.keyA },
      timeout: 100_000,
    });
    const seen = JSON.parse(stdout) as Observed;

    assert.equal(seen.processed.status, 'processed');
    assert.equal(seen.processed.id, seen.uploaded.id);
    assert.equal(seen.uploaded.purpose, 'batch');
    assert.equal(seen.uploaded.expires_at, seen.uploaded.created_at + 7200);
    assert.equal(seen.listed_ids.length, 3, 'two earlier files, then the input, one page each');
    assert.equal(seen.listed_ids.at(-1), seen.uploaded.id);

    assert.equal(seen.batch.status, 'completed');
    assert.deepEqual(seen.batch.metadata, { client: 'python-sdk' });
    assert.deepEqual(
      [seen.batch.priority_at_create, seen.batch.priority],
      ['high', 'high'],
      'extra_body priority',
    );
    assert.deepEqual(seen.batch.request_counts, { total: 20, completed: 20, failed: 0 });
    assert.equal(seen.batch.error_file_id, null);
    assert.equal(seen.output_line_count, 20);
    assert.deepEqual(
      [...seen.output_custom_ids].sort(),
      Array.from({ length: 20 }, (_, i) => `py-${i}`).sort(),
    );
    assert.deepEqual(seen.output_status_codes, [200]);

    assert.deepEqual(seen.errors, ['BadRequestError', 'NotFoundError', 'NotFoundError']);
    assert.deepEqual(seen.model_ids, ['sim-model'], "client.models.list() answers the pool's models");
    assert.deepEqual(
      seen.partial_custom_ids,
      seen.output_custom_ids,
      'partial results page through the output',
    );
  });
});
