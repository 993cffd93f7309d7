import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, poolServing } from '../../src/config';

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

  describe('upstream pools (UPSTREAMS, UPSTREAMS_FILE)', () => {
    const two = {
      pools: {
        chat: {
          urls: ['http://h1:8000/v1/', 'http://h2:8000/v1'],
          api_key: 'sk-pool-chat',
          models: ['meta-llama/Llama-3.1-8B-Instruct'],
          metrics_urls: ['http://h1:8000/metrics'],
          max_workers: 128,
        },
        embed: { urls: ['https://e:8000/v1'], models: ['bge-m3', 'e5'] },
      },
    };
    let dir: string;
    before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'besh-upstreams-'))));
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('without UPSTREAMS is one pool of VLLM_BASE_URL that serves every model', () => {
      const config = loadConfig({
        VLLM_BASE_URL: 'http://gpu:8000/v1',
        VLLM_API_KEY: 'sk-up',
        VLLM_METRICS_URLS: 'http://gpu:8000/metrics',
        MAX_WORKERS: '64',
      });
      assert.deepEqual(config.pools, [
        {
          name: 'default',
          urls: ['http://gpu:8000/v1'],
          apiKey: 'sk-up',
          models: [],
          metricsUrls: ['http://gpu:8000/metrics'],
          maxWorkers: 64,
        },
      ]);
      assert.equal(poolServing(config.pools, 'any/model')?.name, 'default');
    });

    it('reads pools from inline JSON, a JSON file and a YAML file alike, and routes each model to its pool', () => {
      const jsonFile = path.join(dir, 'upstreams.json');
      fs.writeFileSync(jsonFile, JSON.stringify(two));
      const yamlFile = path.join(dir, 'upstreams.yaml');
      fs.writeFileSync(
        yamlFile,
        [
          'pools:',
          '  chat:',
          '    urls: [http://h1:8000/v1/, http://h2:8000/v1]',
          '    api_key: sk-pool-chat',
          '    models: [meta-llama/Llama-3.1-8B-Instruct]',
          '    metrics_urls: [http://h1:8000/metrics]',
          '    max_workers: 128',
          '  embed:',
          '    urls: [https://e:8000/v1]',
          '    models:',
          '      - bge-m3',
          '      - e5',
        ].join('\n'),
      );
      const want = [
        {
          name: 'chat',
          urls: ['http://h1:8000/v1', 'http://h2:8000/v1'],
          apiKey: 'sk-pool-chat',
          models: ['meta-llama/Llama-3.1-8B-Instruct'],
          metricsUrls: ['http://h1:8000/metrics'],
          maxWorkers: 128,
        },
        {
          name: 'embed',
          urls: ['https://e:8000/v1'],
          apiKey: undefined,
          models: ['bge-m3', 'e5'],
          metricsUrls: [],
          maxWorkers: 32,
        },
      ];
      for (const env of [
        { UPSTREAMS: JSON.stringify(two) },
        { UPSTREAMS_FILE: jsonFile },
        { UPSTREAMS_FILE: yamlFile },
      ]) {
        const config = loadConfig({ ...env, MAX_WORKERS: '32', VLLM_BASE_URL: 'http://ignored:8000/v1' });
        assert.deepEqual(config.pools, want, JSON.stringify(env));
        assert.equal(poolServing(config.pools, 'e5')?.name, 'embed');
        assert.equal(poolServing(config.pools, 'meta-llama/Llama-3.1-8B-Instruct')?.name, 'chat');
        assert.equal(
          poolServing(config.pools, 'gpt-4o'),
          undefined,
          'a model no pool names is served nowhere',
        );
      }
    });

    it('lets one pool leave out its models to take every model no other pool names', () => {
      const config = loadConfig({
        UPSTREAMS: JSON.stringify({ pools: { ...two.pools, rest: { urls: ['http://r:8000/v1'] } } }),
      });
      assert.equal(poolServing(config.pools, 'gpt-4o')?.name, 'rest');
      assert.equal(poolServing(config.pools, 'e5')?.name, 'embed');
    });

    it('names every mistake, and never echoes the text (it may hold a key)', () => {
      const bad = (upstreams: unknown) => problemsOf({ UPSTREAMS: JSON.stringify(upstreams) });
      assert.match(
        problemsOf({ UPSTREAMS: '{"pools": {"a": {"api_key": "sk-secret"' }),
        /UPSTREAMS is not valid JSON/,
      );
      assert.doesNotMatch(problemsOf({ UPSTREAMS: '{"pools": {"a": {"api_key": "sk-secret"' }), /sk-secret/);
      assert.match(bad({ a: {} }), /UPSTREAMS: must be an object \{"pools"/);
      assert.match(bad({ pools: {} }), /UPSTREAMS: names no pool/);
      assert.match(
        bad({ pools: { a: { urls: [], models: ['m'] } } }),
        /pool "a": "urls" must be a non-empty list/,
      );
      assert.match(
        bad({ pools: { a: { urls: ['h1:8000'], models: ['m'] } } }),
        /pool "a" urls must be a URL/,
      );
      assert.match(
        bad({ pools: { a: { urls: ['http://h/v1'], models: [] } } }),
        /pool "a": "models" must be a non-empty list/,
      );
      assert.match(
        bad({ pools: { a: { urls: ['http://h/v1'], model: ['m'] } } }),
        /pool "a": unknown key\(s\) model/,
      );
      assert.match(
        bad({ pools: { a: { urls: ['http://h/v1'], max_workers: 0 } } }),
        /"max_workers" must be a whole number/,
      );
      assert.match(bad({ pools: { 'a b': { urls: ['http://h/v1'] } } }), /pool "a b": a pool name is/);
      assert.match(
        bad({
          pools: { a: { urls: ['http://h/v1'], models: ['m'] }, b: { urls: ['http://g/v1'], models: ['m'] } },
        }),
        /model "m" is in pools "a" and "b"/,
      );
      assert.match(
        bad({ pools: { a: { urls: ['http://h/v1'] }, b: { urls: ['http://g/v1'] } } }),
        /only one pool may leave out "models"/,
      );
      assert.match(
        problemsOf({ UPSTREAMS: '{}', UPSTREAMS_FILE: '/x.yaml' }),
        /UPSTREAMS or UPSTREAMS_FILE, not both/,
      );
      assert.match(
        problemsOf({ UPSTREAMS_FILE: path.join(dir, 'missing.yaml') }),
        /cannot be read \(ENOENT\)/,
      );
      const broken = path.join(dir, 'broken.yaml');
      fs.writeFileSync(broken, 'pools:\n  a:\n    api_key: "sk-secret\n');
      const msg = problemsOf({ UPSTREAMS_FILE: broken });
      assert.match(msg, /is not valid YAML \(line \d+, column \d+\)/);
      assert.doesNotMatch(msg, /sk-secret/);
    });
  });
});
