import assert from 'node:assert/strict';
import fc from 'fast-check';
import { objectMembers, scanRequestLine } from '../../activities/json-scan';

/** What JSON.parse makes of a line, in the scanner's terms. */
function parsed(line: string) {
  const v = JSON.parse(line) as { custom_id: string; body: { model?: unknown } };
  return {
    customId: v.custom_id,
    body: v.body,
    model: typeof v.body.model === 'string' ? v.body.model : '',
  };
}

/** Scans `line` and checks it against JSON.parse; returns the body's bytes as text. */
function scanAgrees(line: string): string {
  const scanned = scanRequestLine(Buffer.from(line));
  assert.ok(scanned, `scanned: ${line}`);
  const body = scanned.body.toString();
  assert.deepEqual(
    { customId: scanned.customId, body: JSON.parse(body) as unknown, model: scanned.model },
    parsed(line),
  );
  return body;
}

describe('json-scan: a batch line read without parsing it', () => {
  it('finds custom_id, body and model in any key order, forwarding the body bytes as they are', () => {
    const body = '{"messages":[{"role":"user","content":"hi"}],"model":"m","max_tokens":5}';
    for (const line of [
      `{"custom_id":"r1","method":"POST","url":"/v1/chat/completions","body":${body}}`,
      `{"body":${body},"url":"/v1/chat/completions","custom_id":"r1","method":"POST"}`,
      `{"method":"POST","body":${body},"custom_id":"r1","url":"/v1/chat/completions"}`,
    ]) {
      assert.equal(scanAgrees(line), body);
    }
  });

  it('is not fooled by the same keys nested in values, or by "body" as a string', () => {
    const line = JSON.stringify({
      url: 'body',
      note: '"body":{"model":"wrong"},"custom_id":"wrong"',
      meta: { custom_id: 'nested', body: { model: 'nested' }, list: [{ body: 1 }, ['custom_id', 'body']] },
      body: {
        metadata: { model: 'nested-model', body: 'x' },
        messages: [{ role: 'user', content: '{"model":"in a string","custom_id":"x"}' }],
        model: 'the-model',
        tools: [{ model: 'in-array' }],
      },
      custom_id: 'the-id',
    });
    scanAgrees(line);
    assert.equal(scanRequestLine(Buffer.from(line))?.model, 'the-model');
  });

  it('decodes escaped quotes, backslashes and unicode escapes, and knows an escaped quote from a closing one', () => {
    for (const customId of [
      'a"b',
      'ends with \\',
      '\\"',
      '\\\\',
      'x\\\\"y',
      'ünïcödé 😀',
      '\u2028\t\n',
      '',
    ]) {
      const line = JSON.stringify({ custom_id: customId, body: { model: `m-${customId}`, s: customId } });
      scanAgrees(line);
    }
    // Written with \u escapes rather than the characters; keys spelled with escapes count too.
    const escaped =
      '{"custom\\u005fid":"caf\\u00e9 \\ud83d\\ude00","b\\u006fdy":{"mod\\u0065l":"\\u006d","k":"\\\\\\""},' +
      '"url":"\\"body\\":"}';
    assert.deepEqual(scanRequestLine(Buffer.from(escaped)), {
      customId: 'café 😀',
      body: Buffer.from('{"mod\\u0065l":"\\u006d","k":"\\\\\\""}'),
      model: 'm',
    });
  });

  it('allows whitespace wherever JSON does', () => {
    const line =
      ' \t{ "custom_id" :\t"r1" ,\r"body"\t:\r { "model" :  "m" , "n" : [ 1 , 2.5e3 , true , null ] } ,"x":-0 } \t';
    assert.equal(scanAgrees(line), '{ "model" :  "m" , "n" : [ 1 , 2.5e3 , true , null ] }');
  });

  it('takes the last of two equal keys, as JSON.parse does', () => {
    scanAgrees('{"custom_id":"first","body":{"model":"a","model":"b"},"custom_id":"last"}');
    scanAgrees('{"custom_id":"r","body":{"model":"a"},"body":{"model":"b"}}');
  });

  it('gives an empty model when the body has none or a non-string one', () => {
    assert.equal(scanRequestLine(Buffer.from('{"custom_id":"r","body":{}}'))?.model, '');
    assert.equal(scanRequestLine(Buffer.from('{"custom_id":"r","body":{"model":7}}'))?.model, '');
    assert.equal(scanRequestLine(Buffer.from('{"custom_id":"r","body":{"model":{"model":"x"}}}'))?.model, '');
  });

  it('returns null rather than guess on what validation would not let through', () => {
    for (const line of [
      '',
      '   ',
      '[]',
      '{"custom_id":"r"}',
      '{"body":{}}',
      '{"custom_id":7,"body":{}}',
      '{"custom_id":"r","body":"text"}',
      '{"custom_id":"r","body":{"model":"m"}',
      '{"custom_id":"r","body":{"model":"m"}} x',
      '{"custom_id":"r,"body":{}}',
      '{"custom_id" "r","body":{}}',
    ]) {
      assert.equal(scanRequestLine(Buffer.from(line)), null, line);
    }
  });

  it('reports where an object ends, and each wanted key’s value span', () => {
    const b = Buffer.from('xx { "a" : [1,{"b":2}] , "b":"s" } yy');
    assert.deepEqual(objectMembers(b, 2, ['b', 'a', 'c']), {
      values: [{ start: 29, end: 32 }, { start: 11, end: 22 }, null],
      end: 34,
    });
    assert.equal(b.toString('utf8', 29, 32), '"s"');
  });

  it('agrees with JSON.parse on random lines: key order, nested look-alike keys, whitespace (fast-check)', () => {
    const lookAlike = fc.constantFrom('custom_id', 'body', 'model', 'url', 'x');
    const value = fc.letrec((tie) => ({
      v: fc.oneof(
        { depthSize: 'small' },
        fc.jsonValue({ maxDepth: 1 }),
        fc.dictionary(fc.oneof(lookAlike, fc.string()), tie('v'), { maxKeys: 4 }),
        fc.array(tie('v'), { maxLength: 3 }),
      ),
    })).v;
    const line = fc
      .record({
        custom_id: fc.string({ unit: 'binary' }),
        method: fc.constant('POST'),
        url: fc.oneof(fc.constant('/v1/chat/completions'), lookAlike),
        body: fc
          .tuple(
            fc.dictionary(fc.oneof(lookAlike, fc.string()), value, { maxKeys: 5 }),
            fc.option(fc.string()),
          )
          .map(([rest, model]) => (model === null ? rest : { ...rest, model })),
        extra: value,
      })
      .chain((obj) =>
        fc
          .shuffledSubarray(Object.entries(obj), { minLength: 5 })
          .map((entries) => Object.fromEntries(entries)),
      );
    // JSON.stringify's indentation, with its newlines turned into other whitespace: one line, spaced anywhere.
    const spacing = fc.tuple(fc.constantFrom(0, 1, '\t', ' \r '), fc.constantFrom(' ', '\t', '\r', ''));
    fc.assert(
      fc.property(line, spacing, (obj, [indent, newline]) => {
        scanAgrees(JSON.stringify(obj, null, indent).replace(/\n/g, newline));
      }),
      { numRuns: 500 },
    );
  });
});
