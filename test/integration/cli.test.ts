import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { firstLines } from '../../src/cli/get';
import { projectRoot } from '../../src/paths';
import type { BatchResultLine } from '../../src/shared/openai';
import {
  batchLines,
  createBatch,
  downloadLines,
  toJsonl,
  uploadBatchFile,
  waitForBatch,
} from '../support/batches';
import { startStack, type Stack } from '../support/stack';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs besh as an operator would, without a terminal; never throws, so exit codes can be asserted. */
function besh(args: string[], env: Record<string, string | undefined>): Promise<Run> {
  const cli = path.join(projectRoot, 'src/cli/besh.ts');
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['-r', 'ts-node/register', cli, ...args],
      { cwd: projectRoot, env, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('besh CLI', function () {
  this.timeout(120_000);
  let s: Stack;
  let dir: string;
  let input: string;
  let env: Record<string, string | undefined>;
  const run = (...args: string[]) => besh(args, env);
  const allFiles = async (client: OpenAI) => (await client.files.list()).data.map((f) => f.id).sort();
  const allBatches = async (client: OpenAI) => (await client.batches.list()).data.map((b) => b.id).sort();

  before(async () => {
    s = await startStack();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'besh-cli-'));
    input = path.join(dir, 'requests.jsonl');
    fs.writeFileSync(input, toJsonl(batchLines(20)));
    env = { ...process.env, BESH_BASE_URL: s.baseURL, BESH_API_KEY: s.keyA };
  });
  after(async () => {
    await s?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('upload prints the id of a file the API knows; --json prints the File object', async () => {
    const r = await run('upload', input);
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    assert.match(id, /^file-\w+$/);
    const f = await s.openai.files.retrieve(id);
    assert.deepEqual([f.filename, f.purpose, f.bytes], ['requests.jsonl', 'batch', fs.statSync(input).size]);

    const j = await run('upload', input, '--json');
    assert.equal(j.code, 0, j.stderr);
    const obj = JSON.parse(j.stdout) as OpenAI.FileObject;
    assert.equal(obj.object, 'file');
    assert.equal((await s.openai.files.retrieve(obj.id)).id, obj.id);
  });

  let batchId: string;

  it('submit --wait shows progress, prints the completed batch and exits 0', async () => {
    const r = await run(
      'submit',
      input,
      '--endpoint',
      '/v1/chat/completions',
      '--metadata',
      'run=cli',
      '--wait',
    );
    assert.equal(r.code, 0, r.stderr);
    batchId = r.stdout.split('\n')[0];
    assert.match(batchId, /^batch_\w+$/);
    assert.match(r.stdout, /^status\s+completed$/m);
    assert.match(r.stdout, /^requests\s+20 total, 20 completed, 0 failed$/m);
    assert.match(r.stdout, /^metadata\s+run=cli$/m);
    assert.match(r.stdout, /^created\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/m);
    // Not a terminal: plain progress lines on stderr, the last one complete.
    assert.match(r.stderr, /^completed \[#+\] 100% 20\/20 done, 0 failed, ETA 0s$/m);
    assert.ok(!r.stderr.includes('\r'), 'no redraws off a terminal');
    const b = await s.openai.batches.retrieve(batchId);
    assert.equal(b.status, 'completed');
    assert.deepEqual(b.metadata, { run: 'cli' });
    assert.match(r.stdout, new RegExp(`^output file\\s+${b.output_file_id}$`, 'm'));
  });

  it('get ID --lines 3 prints exactly the first 3 result lines', async () => {
    const r = await run('get', batchId, '--lines', '3');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`^${batchId} completed: 20 total, 20 completed, 0 failed$`, 'm'));
    const lines = r.stdout.split('\n').filter(Boolean);
    assert.equal(lines.length, 3, r.stdout);
    const parsed = lines.map((l) => JSON.parse(l) as BatchResultLine);
    const b = await s.openai.batches.retrieve(batchId);
    const output = await downloadLines(s.openai, b.output_file_id);
    assert.deepEqual(parsed, output.slice(0, 3));
    const inputIds = new Set(batchLines(20).map((l) => l.custom_id));
    assert.ok(parsed.every((l) => inputIds.has(l.custom_id) && l.response?.status_code === 200));

    const all = await run('get', batchId, '--lines', '50');
    assert.equal(all.stdout.split('\n').filter(Boolean).length, 20);
    const none = await run('get', batchId, '--lines', '0');
    assert.deepEqual([none.code, none.stdout], [0, '']);
  });

  it('get --partial --follow prints every line once as it is answered; --after goes on from its cursor', async () => {
    const lines = batchLines(200).map((l, i) =>
      i % 20 === 0 ? { ...l, body: { ...l.body, stream: true } } : l,
    );
    const batch = await createBatch(s.openai, toJsonl(lines));
    const followed = await run('get', batch.id, '--partial', '--follow');
    assert.equal(followed.code, 0, followed.stderr);
    const done = await waitForBatch(s.openai, batch.id);
    const file = await downloadLines(s.openai, done.output_file_id);
    const printed = followed.stdout.split('\n').filter(Boolean);
    assert.deepEqual([...printed].sort(), file.map((l) => JSON.stringify(l)).sort());
    const cursor = /go on with --after (\S+)$/m.exec(followed.stderr)?.[1];
    assert.ok(cursor, followed.stderr);
    assert.match(followed.stderr, /^190 output lines; that is all of them/m);
    const after = await run('get', batch.id, '--partial', '--after', cursor);
    assert.deepEqual([after.code, after.stdout], [0, '']);
    const errors = await run('get', batch.id, '--partial', '--errors');
    assert.equal(errors.stdout.split('\n').filter(Boolean).length, 10);
    const misuse = await run('get', batch.id, '--follow');
    assert.equal(misuse.code, 2);
  });

  it('get exits 1 for a batch that ended without completing, after showing why', async () => {
    const bad = await createBatch(
      s.openai,
      toJsonl([{ custom_id: 'x', method: 'GET', url: '/v1/x', body: {} }]),
    );
    await waitForBatch(s.openai, bad.id);
    const r = await run('get', bad.id);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^${bad.id} failed:`, 'm'));
    assert.match(r.stderr, /invalid_method/);
    assert.match(r.stderr, new RegExp(`besh: batch ${bad.id} ended failed, not completed`));
  });

  it('batches list shows the batch; batches get prints it, or the object with --json', async () => {
    const list = await run('batches', 'list');
    assert.equal(list.code, 0, list.stderr);
    assert.match(
      list.stdout,
      new RegExp(`^${batchId}\\tcompleted\\t/v1/chat/completions\\t20/20, 0\\t\\S+Z$`, 'm'),
    );
    const limited = await run('batches', 'list', '--limit', '1');
    assert.equal(limited.stdout.trim().split('\n').length, 2, 'the header and one batch');

    const get = await run('batches', 'get', batchId);
    assert.match(get.stdout, new RegExp(`^id\\s+${batchId}$`, 'm'));
    const json = JSON.parse((await run('batches', 'get', batchId, '--json')).stdout) as OpenAI.Batch;
    assert.deepEqual([json.id, json.request_counts], [batchId, { total: 20, completed: 20, failed: 0 }]);
  });

  it('cancel of a finished batch exits 1 with the API status and message', async () => {
    const r = await run('batches', 'cancel', batchId);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim(), 'besh: 400 Cannot cancel a batch whose status is completed.');
    assert.equal((await s.openai.batches.retrieve(batchId)).status, 'completed');
  });

  it('batches delete removes the batch and its results, and keeps its input file', async () => {
    const created = await createBatch(s.openai, toJsonl(batchLines(2)));
    const done = await waitForBatch(s.openai, created.id);
    const r = await run('batches', 'delete', created.id);
    assert.equal(r.code, 0, r.stderr);
    await assert.rejects(s.openai.batches.retrieve(created.id), OpenAI.NotFoundError);
    await assert.rejects(s.openai.files.retrieve(done.output_file_id!), OpenAI.NotFoundError);
    assert.equal((await s.openai.files.retrieve(created.input_file_id)).id, created.input_file_id);
  });

  it("delete --dry-run lists everything and deletes nothing; delete --yes empties the tenant, not another's", async () => {
    const other = await uploadBatchFile(s.openaiB, toJsonl(batchLines(1)));
    const files = await allFiles(s.openai);
    const batches = await allBatches(s.openai);
    assert.ok(files.length >= 4 && batches.length >= 1);

    const dry = await run('delete', '--files', '--batches', '--dry-run', '--yes');
    assert.equal(dry.code, 0, dry.stderr);
    for (const id of [...files, ...batches]) assert.ok(dry.stdout.includes(id), `${id} listed`);
    assert.ok(!dry.stdout.includes(other.id));
    assert.deepEqual([await allFiles(s.openai), await allBatches(s.openai)], [files, batches]);

    const unasked = await run('delete', '--files', '--batches');
    assert.equal(unasked.code, 2);
    assert.match(unasked.stderr, /--yes/);
    assert.deepEqual(await allFiles(s.openai), files);

    const r = await run('delete', '--files', '--batches', '--yes');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([await allFiles(s.openai), await allBatches(s.openai)], [[], []]);
    assert.equal((await s.openaiB.files.retrieve(other.id)).id, other.id);
  });

  it('a missing key exits 2 naming BESH_API_KEY', async () => {
    const r = await besh(['batches', 'list'], { ...env, BESH_API_KEY: undefined });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /BESH_API_KEY/);
    assert.equal(r.stdout, '');
  });

  it('usage errors exit 2; --help exits 0', async () => {
    const unknown = await run('frobnicate');
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /^besh: unknown command "frobnicate"/);
    const option = await run('batches', 'list', '--bogus');
    assert.equal(option.code, 2);
    assert.match(option.stderr, /--bogus/);
    const noEndpoint = await run('submit', input);
    assert.equal(noEndpoint.code, 2);
    assert.match(noEndpoint.stderr, /--endpoint is required/);
    const help = await run('--help');
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^usage: besh COMMAND/);
    const sub = await run('batches', 'get', '--help');
    assert.deepEqual([sub.code, /^usage: besh batches list/.test(sub.stdout)], [0, true]);
  });

  it('an API it cannot reach exits 1 saying so', async () => {
    const r = await besh(['batches', 'list'], { ...env, BESH_BASE_URL: 'http://127.0.0.1:9/v1' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^besh: cannot reach the API \(.*\); check BESH_BASE_URL/);
  });
});

describe('besh get: reading the first lines', () => {
  const encoder = new TextEncoder();

  it('returns exactly n lines and stops reading there', async () => {
    let pulls = 0;
    let cancelled = false;
    // An endless file, two lines per chunk: only reading on demand and stopping can return.
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulls++;
        controller.enqueue(encoder.encode(`{"n":${2 * pulls - 1}}\n{"n":${2 * pulls}}\n`));
      },
      cancel() {
        cancelled = true;
      },
    });
    assert.deepEqual(await firstLines(body, 5), ['{"n":1}', '{"n":2}', '{"n":3}', '{"n":4}', '{"n":5}']);
    assert.ok(pulls <= 4, `read ${pulls} chunks`);
    assert.ok(cancelled);
  });

  it('joins lines split across chunks, even inside a character, and keeps a last line without newline', async () => {
    const bytes = encoder.encode('{"a":"é"}\r\n\n{"b":2}\n{"c":3}');
    const chunks = [bytes.slice(0, 7), bytes.slice(7, 13), bytes.slice(13)]; // 7 splits the é
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const c of chunks) controller.enqueue(c);
        controller.close();
      },
    });
    assert.deepEqual(await firstLines(body, 10), ['{"a":"é"}', '{"b":2}', '{"c":3}']);
  });
});
