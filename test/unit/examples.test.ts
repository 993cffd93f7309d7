import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { ingestSpooled } from '../../src/files/ingest';
import { projectRoot } from '../../src/paths';
import { BATCH_ENDPOINTS } from '../../src/shared/openai';
import { validateStoredFile } from '../support/validate';
import { LocalBlobStore } from '../../src/storage/local-blob-store';

const EXAMPLES = path.join(projectRoot, 'examples');
/** `examples/chat-completions.jsonl` holds requests for `/v1/chat/completions`, and so on. */
const endpointOf = (file: string) => `/v1/${path.basename(file, '.jsonl').replace(/-/g, '/')}`;

// The README's requests, passed through what BESH itself does to a file: the upload's checks, then the batch's
// validation. An example that either would refuse fails here instead of in a newcomer's first batch.
describe('examples/', () => {
  const files = fs
    .readdirSync(EXAMPLES)
    .filter((f) => f.endsWith('.jsonl'))
    .sort();
  let dir: string;
  let blobs: LocalBlobStore;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'besh-examples-'));
    blobs = new LocalBlobStore(path.join(dir, 'files'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('holds one request file for each batch endpoint, and nothing else', () => {
    assert.deepEqual(files.map(endpointOf).sort(), [...BATCH_ENDPOINTS].sort());
  });

  it('is what the README names and shows', () => {
    const readme = fs.readFileSync(path.join(projectRoot, 'README.md'), 'utf8');
    const named = new Set(readme.match(/examples\/[\w.-]+\.jsonl/g));
    assert.deepEqual([...named].map((name) => path.basename(name)).sort(), files);
    // Each request line the README shows is a line of an example, so it passes the checks below too.
    const shown = readme.split('\n').filter((line) => line.startsWith('{"custom_id"'));
    const lines = new Set(files.flatMap((f) => fs.readFileSync(path.join(EXAMPLES, f), 'utf8').split('\n')));
    assert.equal(shown.length, files.length, 'one line for each endpoint');
    for (const line of shown) assert.ok(lines.has(line), `an example line: ${line}`);
  });

  for (const file of files) {
    it(`${file}: passes the upload check and validates as a ${endpointOf(file)} batch`, async () => {
      const config = loadConfig({ DATA_DIR: dir });
      await ingestSpooled(path.join(EXAMPLES, file), file, true, blobs, {
        maxBytes: config.maxUploadBytes,
        maxLineBytes: config.maxLineBytes,
        maxLines: config.maxUploadLines,
        maxExpansionRatio: config.maxExpansionRatio,
        tmpDir: dir,
      });
      const result = await validateStoredFile(config, blobs, file, endpointOf(file));
      assert.ok(result.ok, JSON.stringify(result));
      const lines = fs.readFileSync(path.join(EXAMPLES, file), 'utf8').trim().split('\n');
      assert.equal(result.total, lines.length);
      assert.ok(lines.length >= 3 && lines.length <= 5, 'a few requests, small enough to read');
    });
  }
});
