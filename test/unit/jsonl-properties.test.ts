import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import { JsonlCheck } from '../../src/files/jsonl-check';
import { UploadError } from '../../src/files/upload-error';

/** Runs bytes through JsonlCheck in random-sized chunks; resolves with what came out, or the UploadError. */
async function check(bytes: Buffer, chunk: number): Promise<{ out: Buffer; lines: number } | UploadError> {
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunk) parts.push(bytes.subarray(i, i + chunk));
  const checker = new JsonlCheck({ requireJsonObjects: true, maxLineBytes: 1 << 20 });
  const out: Buffer[] = [];
  try {
    await pipeline(Readable.from(parts), checker, async (src: AsyncIterable<Buffer>) => {
      for await (const b of src) out.push(b);
    });
    return { out: Buffer.concat(out), lines: checker.lines };
  } catch (err) {
    if (err instanceof UploadError) return err;
    throw err;
  }
}

const objects = fc.array(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 })), {
  minLength: 1,
  maxLength: 30,
});
const separators = fc.constantFrom('\n', '\r\n', '\n\n', '\n  \n', '\n\t\r\n');

describe('JsonlCheck properties (fast-check)', () => {
  it('passes any file of JSON objects through byte-identical and counts its requests', async () => {
    await fc.assert(
      fc.asyncProperty(
        objects,
        fc.array(separators, { minLength: 30, maxLength: 30 }),
        fc.integer({ min: 1, max: 64 }),
        async (objs, seps, chunk) => {
          const text = objs.map((o, i) => JSON.stringify(o) + seps[i]).join('');
          const result = await check(Buffer.from(text), chunk);
          assert.ok(!(result instanceof UploadError), String(result));
          assert.equal(result.out.toString(), text);
          assert.equal(result.lines, objs.length);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('names the first line that is not a JSON object, wherever it is', async () => {
    const notAnObject = fc.oneof(
      fc
        .jsonValue()
        .filter((v) => typeof v !== 'object' || v === null || Array.isArray(v))
        .map((v) => JSON.stringify(v)),
      fc.string({ minLength: 1 }).filter((s) => !/[\n\r\0]/.test(s) && s.trim() !== '' && !isJsonObject(s)),
    );
    await fc.assert(
      fc.asyncProperty(
        objects,
        fc.nat(),
        notAnObject,
        fc.integer({ min: 1, max: 64 }),
        async (objs, at, bad, chunk) => {
          const lines = objs.map((o) => JSON.stringify(o));
          const k = at % (lines.length + 1);
          lines.splice(k, 0, bad);
          const result = await check(Buffer.from(lines.join('\n') + '\n'), chunk);
          assert.ok(result instanceof UploadError, `accepted ${JSON.stringify(bad)}`);
          assert.match(result.message, new RegExp(`^Line ${k + 1} `));
        },
      ),
      { numRuns: 150 },
    );
  });
});

function isJsonObject(s: string): boolean {
  try {
    const v: unknown = JSON.parse(s);
    return typeof v === 'object' && v !== null && !Array.isArray(v);
  } catch {
    return false;
  }
}
