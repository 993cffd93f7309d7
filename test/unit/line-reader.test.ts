import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { readLines, type Line } from '../../src/files/line-reader';

async function read(data: Buffer, size: number): Promise<Line[]> {
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) chunks.push(data.subarray(i, i + size));
  const lines: Line[] = [];
  for await (const line of readLines(Readable.from(chunks))) lines.push(line);
  return lines;
}

describe('readLines', () => {
  const content = Buffer.from('{"a":1}\r\n\n{"b":"é😀"}\n\r\n{"c":"中"}\r\n{"last":true}');
  const expected = ['{"a":1}', '', '{"b":"é😀"}', '', '{"c":"中"}', '{"last":true}'];

  for (const size of [1, 2, 3, 7, 64 * 1024]) {
    it(`yields lines with exact offsets from ${size}-byte chunks`, async () => {
      const lines = await read(content, size);
      assert.deepEqual(
        lines.map((l) => l.line.toString()),
        expected,
      );
      let offset = 0;
      for (const [i, { line, start, end, number }] of lines.entries()) {
        assert.equal(number, i + 1);
        assert.equal(start, offset);
        const raw = content.subarray(start, end);
        const newline = raw.subarray(line.length);
        assert.ok(raw.subarray(0, line.length).equals(line));
        assert.ok(
          ['\n', '\r\n', ''].includes(newline.toString()),
          `line ${number} ends with ${JSON.stringify(newline)}`,
        );
        offset = end;
      }
      assert.equal(offset, content.length);
    });
  }

  it('yields no line after a final newline, and nothing for an empty stream', async () => {
    assert.deepEqual(
      (await read(Buffer.from('a\n\n'), 1)).map((l) => [l.line.toString(), l.start, l.end]),
      [
        ['a', 0, 2],
        ['', 2, 3],
      ],
    );
    assert.deepEqual(await read(Buffer.alloc(0), 1), []);
  });

  it('keeps a lone CR that does not end a line', async () => {
    const lines = await read(Buffer.from('a\rb\nc\r'), 1);
    assert.deepEqual(
      lines.map((l) => l.line.toString()),
      ['a\rb', 'c\r'],
    );
  });

  it('joins a long line spread over many chunks', async () => {
    const long = Buffer.alloc(3 * 1024 * 1024, 0x61);
    const lines = await read(Buffer.concat([Buffer.from('x\n'), long, Buffer.from('\ny')]), 1000);
    assert.equal(lines.length, 3);
    assert.ok(lines[1].line.equals(long));
    assert.deepEqual([lines[1].start, lines[1].end, lines[2].end], [2, long.length + 3, long.length + 4]);
  });
});
