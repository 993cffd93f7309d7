import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { projectRoot } from '../../src/paths';
import { batchLines, createBatch, toJsonl, waitForBatch } from '../support/batches';
import { testOutputDir } from '../support/global';
import { startStack, type Stack } from '../support/stack';

const schemathesis = path.join(projectRoot, '.tools', 'pyvenv', 'bin', 'schemathesis');

/** Runs schemathesis to the end; resolves with its exit code and everything it printed. */
function run(args: string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(schemathesis, args, {
    cwd: projectRoot,
    // Hypothesis keeps caches in its storage directory: under test-output/, not in the checkout.
    env: { ...process.env, HYPOTHESIS_STORAGE_DIRECTORY: path.join(testOutputDir, 'hypothesis') },
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

/**
 * A generated attack on the whole HTTP surface: schemathesis reads BESH's own description from the running API and
 * sends valid and invalid requests to every operation (test/schemathesis/schemathesis.toml). No answer may be a
 * 5xx, every answer must match the description (status, content type, headers, body), and every error must be
 * OpenAI's shape.
 */
describe('schemathesis against the running API', function () {
  this.timeout(600_000);
  let s: Stack;
  before(async () => {
    // Small uploads: generated files stay small, and a size limit is reachable.
    s = await startStack({ env: { MAX_UPLOAD_BYTES: '65536' } });
  });
  after(async () => s?.close());

  it('finds no server error, no answer outside the description and no error outside OpenAI shape', async () => {
    // An operator key, so /metrics is tested past its 403, and another tenant's key (see schemathesis.toml).
    const { key } = await s.keys.create({ name: 'schemathesis', role: 'operator' });
    const bearer = (k: string) => [{ name: 'Authorization', value: `Bearer ${k}` }];
    const users = [
      { name: 'operator', fixedHeaders: bearer(key) },
      { name: 'tenant', fixedHeaders: bearer(s.keyB) },
    ];
    fs.writeFileSync(path.join(testOutputDir, 'schemathesis-auth.json'), JSON.stringify({ auth: users }));
    // Batches that ended each way with results, so lists answer real batch objects and schemathesis picks ids
    // from them for the operations on one batch. (Its own uploads are random bytes: they make no batch.)
    const openai = new OpenAI({ apiKey: key, baseURL: s.baseURL, maxRetries: 0 });
    const lines = batchLines(3);
    const failing = [{ ...lines[0], method: 'GET' }];
    for (const content of [toJsonl(lines), toJsonl(failing)]) {
      await waitForBatch(openai, (await createBatch(openai, content, { metadata: { seeded: 'yes' } })).id);
    }
    const { code, output } = await run([
      '--config-file',
      path.join(projectRoot, 'test', 'schemathesis', 'schemathesis.toml'),
      'run',
      `${s.baseURL}/openapi.json`,
      '--no-color',
      // e.g. SCHEMATHESIS_ARGS='--seed N' replays the run whose summary printed that seed.
      ...(process.env.SCHEMATHESIS_ARGS ?? '').split(' ').filter(Boolean),
    ]);
    // From its first report section on: errors, failures, warnings and the summary (operations, test cases, failures and
    // the seed that reproduces them).
    const report = output.search(/^=+ (ERRORS|FAILURES|WARNINGS|SUMMARY) =+$/m);
    // Its pytest-style banners (`==== 1 warning in 40s ====`) would read as a pytest run that executed no test, so
    // they become plain headings, and every line is marked as schemathesis's own.
    const shown = (report === -1 ? output : output.slice(report))
      .replace(/^=+ (.*?) =+$/gm, '[$1]')
      .replace(/^/gm, '      schemathesis| ');
    console.log(shown);
    assert.equal(code, 0, 'schemathesis failed (report above)');
  });
});
