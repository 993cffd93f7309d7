import assert from 'node:assert/strict';
import { ParamError, parseCreateBatch, windowSeconds } from '../../src/batches/create-params';

const limits = { minWindowSeconds: 3600, maxWindowSeconds: 86400 };
const valid = { input_file_id: 'file-abc', endpoint: '/v1/chat/completions', completion_window: '24h' };

/** Asserts that `body` is rejected with a ParamError naming `param`. */
function rejects(body: unknown, param: string | null) {
  assert.throws(
    () => parseCreateBatch(body, limits),
    (err) => err instanceof ParamError && err.param === param,
    `expected a ParamError for param ${String(param)}`,
  );
}

describe('parseCreateBatch', () => {
  it('parses a valid body', () => {
    const parsed = parseCreateBatch(
      {
        ...valid,
        endpoint: '/v1/embeddings',
        completion_window: '2h',
        metadata: { team: 'search' },
        output_expires_after: { anchor: 'created_at', seconds: 3600 },
        priority: 'high',
      },
      limits,
    );
    assert.deepEqual(parsed, {
      inputFileId: 'file-abc',
      endpoint: '/v1/embeddings',
      completionWindow: '2h',
      windowSeconds: 7200,
      metadata: { team: 'search' },
      outputExpiresAfterSeconds: 3600,
      priority: 'high',
    });
  });

  it('defaults metadata and output expiry to null', () => {
    const parsed = parseCreateBatch({ ...valid, metadata: null }, limits);
    assert.equal(parsed.metadata, null);
    assert.equal(parsed.outputExpiresAfterSeconds, null);
    assert.equal(parsed.windowSeconds, 86400);
    assert.equal(parsed.priority, 'normal');
    assert.equal(parseCreateBatch({ ...valid, priority: null }, limits).priority, 'normal');
  });

  it("rejects a priority other than 'high', 'normal' or 'low'", () => {
    for (const priority of ['urgent', 'HIGH', 1, '', { level: 'high' }])
      rejects({ ...valid, priority }, 'priority');
  });

  it('accepts 16 metadata keys, a 64-char key and a 512-char value', () => {
    const metadata = Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`k${i}`, 'v']));
    metadata['k'.repeat(64)] = 'v'.repeat(512);
    assert.deepEqual(parseCreateBatch({ ...valid, metadata }, limits).metadata, metadata);
  });

  it('rejects a body that is not an object', () => {
    rejects([valid], null);
    rejects(null, null);
    rejects('{}', null);
  });

  it('rejects an unknown top-level field', () => {
    rejects({ ...valid, api_base: 'http://evil' }, 'api_base');
  });

  it('rejects a missing input_file_id', () => {
    rejects({ ...valid, input_file_id: undefined }, 'input_file_id');
    rejects({ ...valid, input_file_id: '' }, 'input_file_id');
  });

  it('rejects an endpoint outside the list', () => {
    rejects({ ...valid, endpoint: '/v1/images/generations' }, 'endpoint');
    rejects({ ...valid, endpoint: undefined }, 'endpoint');
  });

  it('rejects a missing, malformed or out-of-range completion_window', () => {
    for (const completion_window of [undefined, 24, '24', '24 h', '1.5h', '0h', '59m', '2d']) {
      rejects({ ...valid, completion_window }, 'completion_window');
    }
    assert.equal(parseCreateBatch({ ...valid, completion_window: '60m' }, limits).windowSeconds, 3600);
  });

  it('rejects bad metadata', () => {
    const many = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v']));
    rejects({ ...valid, metadata: many }, 'metadata');
    rejects({ ...valid, metadata: { ['k'.repeat(65)]: 'v' } }, 'metadata');
    rejects({ ...valid, metadata: ['v'] }, 'metadata');
    rejects({ ...valid, metadata: { n: 1 } }, 'metadata.n');
    rejects({ ...valid, metadata: { long: 'v'.repeat(513) } }, 'metadata.long');
  });

  it('rejects a bad output_expires_after', () => {
    for (const output_expires_after of [
      { anchor: 'completed_at', seconds: 3600 },
      { anchor: 'created_at', seconds: 3599 },
      { anchor: 'created_at', seconds: 2592001 },
      { anchor: 'created_at', seconds: 3600.5 },
      { anchor: 'created_at' },
      { anchor: 'created_at', seconds: 3600, extra: 1 },
      3600,
    ]) {
      rejects({ ...valid, output_expires_after }, 'output_expires_after');
    }
    const max = { anchor: 'created_at', seconds: 2592000 };
    assert.equal(
      parseCreateBatch({ ...valid, output_expires_after: max }, limits).outputExpiresAfterSeconds,
      2592000,
    );
  });
});

describe('windowSeconds', () => {
  it('converts a duration to seconds', () => {
    assert.equal(windowSeconds('24h'), 86400);
    assert.equal(windowSeconds('90s'), 90);
    assert.equal(windowSeconds('15m'), 900);
    assert.equal(windowSeconds('2d'), 172800);
  });

  it('returns null for anything else', () => {
    for (const w of ['0h', '1.5h', 'h', '24', '24H', ' 24h', '-1h', '01h'])
      assert.equal(windowSeconds(w), null, w);
  });
});
