import assert from 'node:assert/strict';
import { errorLine, resultLineId, responseLine, usageOf, zeroUsage } from '../../src/results/result-lines';

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

  it('splices the body text into a response line: the bytes JSON.stringify made of the whole line', () => {
    const bodies: unknown[] = [
      { id: 'chatcmpl-1', choices: [], usage: { prompt_tokens: 3 } },
      { content: 'quotes " and \\ backslashes, é, 😀, \u2028, a\nnewline and a \u0001 control' },
      [1, -2.5, 1e-7, true, null],
      'a string',
      42,
      null,
    ];
    const customIds = ['req-1', 'with "quotes" and \\', 'ünïcödé 😀', 'line\nbreak\u2028'];
    for (const body of bodies) {
      for (const customId of customIds) {
        const line = responseLine('batch_1', customId, 200, 'req_"abc"', JSON.stringify(body));
        const old = {
          id: resultLineId('batch_1', customId),
          custom_id: customId,
          response: { status_code: 200, request_id: 'req_"abc"', body },
          error: null,
        };
        assert.equal(line, JSON.stringify(old));
      }
    }
  });
});
