import assert from 'node:assert/strict';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config';

/** The ConfigError message loadConfig throws for `env`. */
function problemsOf(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.message;
  }
  assert.fail(`expected ${JSON.stringify(env)} to be rejected`);
}

describe('loadConfig', () => {
  it('has sensible defaults for an empty env', () => {
    const config = loadConfig({});
    assert.equal(config.port, 5000);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.maxWorkers, 256);
    assert.equal(config.concurrencyMode, 'adaptive');
    assert.equal(config.maxUploadBytes, 200 * 1024 * 1024);
    assert.equal(config.databaseUrl, undefined);
    assert.equal(config.dataDir, path.resolve('data'));
    assert.equal(config.sqlitePath, path.join(config.dataDir, 'besh.sqlite'));
    assert.equal(config.filesDir, path.join(config.dataDir, 'files'));
    assert.equal(config.vllmBaseUrl, 'http://localhost:8000/v1');
    assert.equal(config.vllmApiKey, undefined);
    assert.deepEqual(config.seedApiKeys, []);
  });

  it('puts the SQLite file and uploads under DATA_DIR', () => {
    const config = loadConfig({ DATA_DIR: '/srv/besh', DATABASE_URL: '  ' });
    assert.equal(config.databaseUrl, undefined);
    assert.equal(config.sqlitePath, path.resolve('/srv/besh/besh.sqlite'));
    assert.equal(config.filesDir, path.resolve('/srv/besh/files'));
  });

  it('reads and trims the values it is given', () => {
    const config = loadConfig({
      BESH_PORT: ' 8080 ',
      BESH_HOST: '0.0.0.0',
      MAX_WORKERS: '8',
      DATABASE_URL: 'postgres://u:p@db/besh',
      VLLM_BASE_URL: 'https://vllm.internal/v1/',
      VLLM_API_KEY: ' sk-upstream ',
      BESH_API_KEYS: 'key-aaaaaaaaaaaaaaaa, key-bbbbbbbbbbbbbbbb ,',
      VLLM_METRICS_URLS: ' http://gpu0:8000/metrics, http://gpu1:8000/metrics/ ,',
    });
    assert.equal(config.port, 8080);
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.maxWorkers, 8);
    assert.equal(config.databaseUrl, 'postgres://u:p@db/besh');
    assert.equal(config.vllmBaseUrl, 'https://vllm.internal/v1');
    assert.equal(config.vllmApiKey, 'sk-upstream');
    assert.deepEqual(config.seedApiKeys, ['key-aaaaaaaaaaaaaaaa', 'key-bbbbbbbbbbbbbbbb']);
    assert.deepEqual(config.vllmMetricsUrls, ['http://gpu0:8000/metrics', 'http://gpu1:8000/metrics']);
    assert.deepEqual(loadConfig({}).vllmMetricsUrls, []);
  });

  it('points Web UI links at the port make demo serves the UI on, unless TEMPORAL_UI_URL says otherwise', () => {
    assert.equal(loadConfig({ TEMPORAL_UI_PORT: '8300' }).temporalUiUrl, 'http://localhost:8300');
    assert.equal(loadConfig({ TEMPORAL_UI_PORT: '8300' }).temporalUiPort, 8300);
    assert.equal(loadConfig({}).temporalUiUrl, 'http://localhost:8233');
    const named = loadConfig({ TEMPORAL_UI_PORT: '8300', TEMPORAL_UI_URL: 'https://temporal.example/' });
    assert.equal(named.temporalUiUrl, 'https://temporal.example');
  });

  for (const [name, value] of [
    ['MAX_WORKERS', 'abc'],
    ['MAX_WORKERS', '0'],
    ['MAX_WORKERS', '2.5'],
    ['BESH_PORT', '70000'],
    ['VLLM_BASE_URL', 'ftp://x'],
    ['VLLM_BASE_URL', 'not a url'],
    ['VLLM_METRICS_URLS', 'gpu1:8000/metrics'],
    ['DATABASE_URL', 'mysql://x'],
    ['TEMPORAL_UI_URL', 'file:///tmp'],
    ['TEMPORAL_UI_PORT', '0'],
  ]) {
    it(`names ${name} when it is "${value}"`, () => {
      const message = problemsOf({ [name]: value });
      assert.ok(message.includes(name), message);
      assert.ok(message.includes(`"${value}"`), message);
    });
  }

  it('reports several problems together', () => {
    const message = problemsOf({
      MAX_WORKERS: 'abc',
      VLLM_BASE_URL: 'ftp://x',
      DATABASE_URL: 'mysql://x',
      REQUEST_TIMEOUT_MS: '5',
    });
    for (const name of ['MAX_WORKERS', 'VLLM_BASE_URL', 'DATABASE_URL', 'REQUEST_TIMEOUT_MS']) {
      assert.ok(message.includes(name), `${name} missing from: ${message}`);
    }
  });

  it('rejects a completion window minimum above the maximum', () => {
    const message = problemsOf({
      COMPLETION_WINDOW_MIN_SECONDS: '7200',
      COMPLETION_WINDOW_MAX_SECONDS: '3600',
    });
    assert.match(message, /COMPLETION_WINDOW_MIN_SECONDS/);
  });

  it('rejects a BESH_API_KEYS entry shorter than 16 characters', () => {
    assert.match(problemsOf({ BESH_API_KEYS: 'key-aaaaaaaaaaaaaaaa,short' }), /BESH_API_KEYS/);
    assert.deepEqual(loadConfig({ BESH_API_KEYS: 'x'.repeat(16) }).seedApiKeys, ['x'.repeat(16)]);
  });

  it('reads BESH_OPERATOR_KEYS like BESH_API_KEYS, and refuses a key in both lists', () => {
    const key = 'x'.repeat(16);
    assert.deepEqual(loadConfig({ BESH_OPERATOR_KEYS: ` ${key} ,` }).seedOperatorKeys, [key]);
    assert.match(problemsOf({ BESH_OPERATOR_KEYS: 'short' }), /BESH_OPERATOR_KEYS entries/);
    assert.match(problemsOf({ BESH_API_KEYS: key, BESH_OPERATOR_KEYS: key }), /both BESH_API_KEYS and/);
  });

  describe('blob store settings', () => {
    const s3 = { BLOB_STORE: 's3', S3_BUCKET: 'besh-data' };

    it('keeps files on the local disk by default and ignores the S3 settings then', () => {
      const config = loadConfig({ S3_FORCE_PATH_STYLE: 'maybe', S3_ACCESS_KEY_ID: 'only-one' });
      assert.equal(config.blobStore, 'local');
    });

    it('reads the S3 settings, with AWS defaults for what is left out', () => {
      assert.deepEqual(loadConfig(s3).s3, {
        endpoint: undefined,
        region: 'us-east-1',
        bucket: 'besh-data',
        prefix: '',
        forcePathStyle: false,
        credentials: undefined,
      });
      const config = loadConfig({
        ...s3,
        S3_ENDPOINT: ' http://minio:9000/ ',
        S3_REGION: 'eu-west-3',
        S3_PREFIX: 'besh/',
        S3_FORCE_PATH_STYLE: 'TRUE',
        S3_ACCESS_KEY_ID: 'AKIAEXAMPLE',
        S3_SECRET_ACCESS_KEY: ' secret ',
      });
      assert.equal(config.blobStore, 's3');
      assert.deepEqual(config.s3, {
        endpoint: 'http://minio:9000',
        region: 'eu-west-3',
        bucket: 'besh-data',
        prefix: 'besh/',
        forcePathStyle: true,
        credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'secret' },
      });
    });

    it('names an unknown BLOB_STORE', () => {
      assert.match(problemsOf({ BLOB_STORE: 'nfs' }), /BLOB_STORE must be one of local, s3 \(got "nfs"\)/);
    });

    it('requires S3_BUCKET for the S3 store, and a plausible one', () => {
      assert.match(problemsOf({ BLOB_STORE: 's3' }), /S3_BUCKET must be set when BLOB_STORE=s3/);
      assert.match(problemsOf({ ...s3, S3_BUCKET: 'my/bucket' }), /S3_BUCKET must be a bucket name/);
    });

    it('wants both S3 credentials or neither', () => {
      const halves: Record<string, string>[] = [
        { S3_ACCESS_KEY_ID: 'AKIAEXAMPLE' },
        { S3_SECRET_ACCESS_KEY: 'secret' },
      ];
      for (const half of halves) {
        assert.match(
          problemsOf({ ...s3, ...half }),
          /S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set together/,
        );
      }
    });

    it('checks S3_ENDPOINT, S3_FORCE_PATH_STYLE and S3_PREFIX', () => {
      assert.match(problemsOf({ ...s3, S3_ENDPOINT: 'minio:9000' }), /S3_ENDPOINT must be a URL/);
      assert.match(
        problemsOf({ ...s3, S3_FORCE_PATH_STYLE: 'yes' }),
        /S3_FORCE_PATH_STYLE must be true or false/,
      );
      assert.match(problemsOf({ ...s3, S3_PREFIX: '/besh/' }), /S3_PREFIX must not start with "\/"/);
    });
  });
});
