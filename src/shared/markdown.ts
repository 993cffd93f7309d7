/**
 * A user's string (a model name, a file name) as Markdown that shows it literally: a code span renders no
 * link, image or HTML, so a tenant cannot put markup in front of an operator in the Temporal Web UI. Backticks
 * (which would close the span) and control characters (which would break the line) are replaced; long strings
 * are cut. Pure: workflow code uses it.
 */
export function literalMarkdown(text: string, maxLength = 128): string {
  const safe = text
    .slice(0, maxLength)
    .replace(/`/g, "'")
    // eslint-disable-next-line no-control-regex -- control characters are exactly what must go
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ');
  return `\`${safe}${text.length > maxLength ? '…' : ''}\``;
}
