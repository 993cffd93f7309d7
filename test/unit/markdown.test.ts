import assert from 'node:assert/strict';
import { literalMarkdown } from '../../src/shared/markdown';

describe('literalMarkdown', () => {
  it('puts a user string in one code span, so links, images and HTML stay text', () => {
    for (const hostile of [
      '[click](https://evil.example)',
      '![x](https://evil.example/pixel.png)',
      '<img src=x onerror=alert(1)>',
      'https://evil.example',
      '**bold** _em_ # heading',
    ]) {
      const md = literalMarkdown(hostile);
      assert.equal(md, `\`${hostile}\``, hostile);
    }
  });

  it('cannot close the span early or break the line', () => {
    const md = literalMarkdown('a` [x](https://evil.example) `b\n# title\r\u2028z');
    assert.equal(md.split('`').length, 3, 'exactly the two backticks of the span');
    assert.doesNotMatch(md, /[\n\r\u2028]/);
  });

  it('cuts long strings', () => {
    const md = literalMarkdown('m'.repeat(5000), 100);
    assert.equal(md, `\`${'m'.repeat(100)}…\``);
  });
});
