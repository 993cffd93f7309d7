import assert from 'node:assert/strict';
import { errorLine, resultLineId, responseLine, usageOf, zeroUsage } from '../../activities/result-lines';

describe('usageOf', () => {
  it('maps chat/completions usage', () => {
    const body = {
      usage: {
        prompt_tokens: 11,
        completion_tokens: 7,
        total_tokens: 18,
        prompt_tokens_details: { cached_tokens: 4 },
        completion_tokens_details: { reasoning_tokens: 3 },
      },
    };
    assert.deepEqual(usageOf(body), {
      inputTokens: 11,
      cachedTokens: 4,
      outputTokens: 7,
      reasoningTokens: 3,
    });
  });

  it('maps Responses API usage', () => {
    const body = {
      object: 'response',
      usage: {
        input_tokens: 20,
        output_tokens: 9,
        input_tokens_details: { cached_tokens: 5 },
        output_tokens_details: { reasoning_tokens: 2 },
      },
    };
    assert.deepEqual(usageOf(body), {
      inputTokens: 20,
      cachedTokens: 5,
      outputTokens: 9,
      reasoningTokens: 2,
    });
  });

  it('counts what is there and zero for missing details (embeddings)', () => {
    const body = { usage: { prompt_tokens: 6, total_tokens: 6, prompt_tokens_details: null } };
    assert.deepEqual(usageOf(body), { inputTokens: 6, cachedTokens: 0, outputTokens: 0, reasoningTokens: 0 });
  });

  it('returns zeros for missing or garbage usage', () => {
    const garbage: unknown[] = [
      undefined,
      null,
      'text',
      42,
      [],
      {},
      { usage: null },
      { usage: 'lots' },
      { usage: [1, 2] },
      { usage: { prompt_tokens: '5', completion_tokens: NaN, prompt_tokens_details: 3 } },
      { usage: { input_tokens: Infinity, output_tokens_details: { reasoning_tokens: '1' } } },
    ];
    for (const body of garbage) assert.deepEqual(usageOf(body), zeroUsage(), JSON.stringify(body));
  });
});

describe('result lines', () => {
  it('gives a stable id per (batch, custom_id) and a different one otherwise', () => {
    const id = resultLineId('batch_1', 'req-1');
    assert.match(id, /^batch_req_[0-9a-f]{24}$/);
    assert.equal(resultLineId('batch_1', 'req-1'), id);
    assert.notEqual(resultLineId('batch_1', 'req-2'), id);
    assert.notEqual(resultLineId('batch_2', 'req-1'), id);
    // The separator keeps the two parts apart.
    assert.notEqual(resultLineId('batch_1r', 'eq-1'), id);
  });

  it('builds an error line with a null response', () => {
    const line = errorLine('batch_1', 'req-1', 'request_timeout', 'too slow');
    assert.deepEqual(line, {
      id: resultLineId('batch_1', 'req-1'),
      custom_id: 'req-1',
      response: null,
      error: { code: 'request_timeout', message: 'too slow' },
    });
  });

  it('builds a response line with a null error', () => {
    const body = { id: 'chatcmpl-1', choices: [] };
    const line = responseLine('batch_1', 'req-1', 200, 'req_abc', body);
    assert.deepEqual(line, {
      id: resultLineId('batch_1', 'req-1'),
      custom_id: 'req-1',
      response: { status_code: 200, request_id: 'req_abc', body },
      error: null,
    });
    assert.deepEqual(Object.keys(JSON.parse(JSON.stringify(line)) as object), [
      'id',
      'custom_id',
      'response',
      'error',
    ]);
  });
});
