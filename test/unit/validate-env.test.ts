import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// scripts/validate-env.sh (`make validate-env`) and scripts/check-env.sh, run as the Makefile runs them, on env
// files in a temporary folder. `make check-deploy` checks env.example itself.
const root = path.resolve(__dirname, '../..');
const filled = ['MODEL_NAME=Qwen/Qwen2.5-0.5B-Instruct', 'HF_TOKEN=', 'POSTGRES_PASSWORD=check-password'];
const s3 = [...filled, 'BLOB_STORE=s3', 'S3_BUCKET=besh'];

let dir: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'besh-validate-env-'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs validate-env on these lines; `problems` are the named problems, one line each. */
function validate(lines: string[]): { ok: boolean; problems: string[]; out: string } {
  const file = path.join(dir, 'env');
  fs.writeFileSync(file, lines.join('\n') + '\n');
  const run = spawnSync('bash', [path.join(root, 'scripts/validate-env.sh'), file], { encoding: 'utf8' });
  const problems = run.stderr
    .split('\n')
    .filter((line) => line.startsWith('  - '))
    .map((line) => line.slice(4));
  return { ok: run.status === 0, problems, out: run.stdout + run.stderr };
}

/** Asserts these lines are refused with exactly one problem, naming `name`. */
function refusedFor(lines: string[], name: string, says: RegExp): void {
  const { ok, problems, out } = validate(lines);
  assert.equal(ok, false, `expected a refusal naming ${name}:\n${out}`);
  assert.equal(problems.length, 1, `expected one problem:\n${out}`);
  assert.ok(problems[0].startsWith(name), `the problem should start with ${name}: ${problems[0]}`);
  assert.match(problems[0], says);
}

describe('validate-env: the blob store settings', () => {
  it('accepts the local store, which ignores the S3 settings', () => {
    assert.equal(validate(filled).ok, true);
    assert.equal(validate([...filled, 'BLOB_STORE=local']).ok, true);
    const junk = [
      'S3_BUCKET=Not_A_Bucket',
      'S3_ENDPOINT=minio:9000',
      'S3_FORCE_PATH_STYLE=yes',
      'S3_ACCESS_KEY_ID=x',
    ];
    assert.equal(validate([...filled, 'BLOB_STORE=local', ...junk]).ok, true);
  });

  it('accepts complete S3 settings: AWS with the default chain, or an endpoint with both keys', () => {
    for (const extra of [
      [],
      ['S3_ENDPOINT=', 'S3_REGION=eu-west-1', 'S3_PREFIX=besh/', 'S3_FORCE_PATH_STYLE=false'],
      [
        'S3_ENDPOINT=http://s3:8333',
        'S3_FORCE_PATH_STYLE=true',
        'S3_ACCESS_KEY_ID=AK',
        'S3_SECRET_ACCESS_KEY=SK',
      ],
      ['S3_ENDPOINT=https://rgw.example.com:7480/base', 'S3_ACCESS_KEY_ID=', 'S3_SECRET_ACCESS_KEY='],
      ['S3_BUCKET="my.bucket-1"', 'S3_FORCE_PATH_STYLE=TRUE'],
      ['S3_BUCKET=Legacy_Bucket', 'S3_FORCE_PATH_STYLE=False'],
    ]) {
      const { ok, out } = validate([...s3, ...extra]);
      assert.equal(ok, true, `${extra.join(' ')}:\n${out}`);
    }
  });

  it('refuses an unknown BLOB_STORE, whatever the S3 settings', () => {
    for (const store of ['S3', 'minio', 'gcs']) {
      refusedFor(
        [...filled, `BLOB_STORE=${store}`],
        'BLOB_STORE',
        new RegExp(`local or s3 \\(got ${store}\\)`),
      );
    }
  });

  it('refuses BLOB_STORE=s3 without a bucket, or with a name S3 does not allow', () => {
    refusedFor([...filled, 'BLOB_STORE=s3'], 'S3_BUCKET', /required when BLOB_STORE=s3/);
    refusedFor([...s3, 'S3_BUCKET='], 'S3_BUCKET', /required when BLOB_STORE=s3/);
    for (const bucket of ['-besh', '.besh', 'b', 'my bucket', 'my/bucket', 'b'.repeat(256)]) {
      refusedFor([...s3, `S3_BUCKET=${bucket}`], 'S3_BUCKET', new RegExp(`not a bucket name.*: ${bucket}$`));
    }
  });

  it('refuses one credential without the other', () => {
    refusedFor(
      [...s3, 'S3_ACCESS_KEY_ID=AK'],
      'S3_ACCESS_KEY_ID',
      /without S3_SECRET_ACCESS_KEY: set both, or neither/,
    );
    refusedFor([...s3, 'S3_ACCESS_KEY_ID=AK', 'S3_SECRET_ACCESS_KEY='], 'S3_ACCESS_KEY_ID', /without/);
    refusedFor([...s3, 'S3_SECRET_ACCESS_KEY=SK'], 'S3_SECRET_ACCESS_KEY', /without S3_ACCESS_KEY_ID/);
  });

  it('refuses an endpoint that is not an http(s) URL', () => {
    for (const endpoint of [
      'minio:9000',
      's3.example.com',
      'ftp://s3.example.com',
      'http://',
      'http://a b',
    ]) {
      refusedFor(
        [...s3, `S3_ENDPOINT=${endpoint}`],
        'S3_ENDPOINT',
        /http:\/\/ or https:\/\/ URL, or empty for AWS/,
      );
    }
  });

  it('refuses S3_FORCE_PATH_STYLE other than true or false', () => {
    for (const value of ['yes', '1', 'on']) {
      refusedFor(
        [...s3, `S3_FORCE_PATH_STYLE=${value}`],
        'S3_FORCE_PATH_STYLE',
        new RegExp(`\\(got ${value}\\)`),
      );
    }
  });

  it('refuses a prefix that starts with /', () => {
    refusedFor([...s3, 'S3_PREFIX=/besh/'], 'S3_PREFIX', /must not start with \/ \(got \/besh\/\)/);
    assert.equal(validate([...s3, 'S3_PREFIX=besh/']).ok, true);
  });

  it('names every bad S3 setting at once', () => {
    const { ok, problems } = validate([
      ...filled,
      'BLOB_STORE=s3',
      'S3_ENDPOINT=minio:9000',
      'S3_FORCE_PATH_STYLE=yes',
      'S3_ACCESS_KEY_ID=AK',
    ]);
    assert.equal(ok, false);
    assert.deepEqual(
      problems.map((p) => p.split(' ')[0]),
      ['S3_ACCESS_KEY_ID', 'S3_BUCKET', 'S3_ENDPOINT', 'S3_FORCE_PATH_STYLE'],
    );
  });
});

describe('check-env', () => {
  it('creates .env with a random password and S3 key pair that pass validate-env with BLOB_STORE=s3', () => {
    const keys: string[] = [];
    for (const name of ['a', 'b']) {
      const checkout = path.join(dir, name);
      fs.mkdirSync(path.join(checkout, 'scripts'), { recursive: true });
      fs.copyFileSync(path.join(root, 'env.example'), path.join(checkout, 'env.example'));
      fs.copyFileSync(path.join(root, 'scripts/check-env.sh'), path.join(checkout, 'scripts/check-env.sh'));
      const run = spawnSync('bash', [path.join(checkout, 'scripts/check-env.sh')], { encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
      const env = fs.readFileSync(path.join(checkout, '.env'), 'utf8');
      assert.equal(fs.statSync(path.join(checkout, '.env')).mode & 0o777, 0o600);
      const id = /^S3_ACCESS_KEY_ID=([0-9A-F]{20})$/m.exec(env);
      const secret = /^S3_SECRET_ACCESS_KEY=([0-9a-f]{40})$/m.exec(env);
      assert.ok(id && secret, `random S3 keys in .env:\n${env}`);
      assert.match(env, /^POSTGRES_PASSWORD=[0-9a-f]{32}$/m);
      keys.push(id[1], secret[1]);
      // The last value of a name wins, as in compose: switch the copy to S3 and fill in the deployment's choices.
      const lines = [
        env,
        'MODEL_NAME=Qwen/Qwen2.5-0.5B-Instruct',
        'HF_TOKEN=',
        'BLOB_STORE=s3',
        'S3_BUCKET=besh',
      ];
      const { ok, out } = validate(lines);
      assert.equal(ok, true, out);
    }
    assert.equal(new Set(keys).size, 4, 'each .env gets its own keys');
  });
});
