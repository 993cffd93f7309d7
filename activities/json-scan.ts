/**
 * Finds members of a JSON object in its bytes without parsing it: the chunk runner forwards each request's body
 * as the bytes of its line, and parsing a 4 KB line only to serialise its body again was a large share of the
 * worker's CPU on a fast upstream. The input must be valid JSON (validation proved each line is); on anything
 * unexpected the functions return null and the caller parses instead.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

function skipSpace(b: Buffer, i: number): number {
  while (i < b.length && isSpace(b[i])) i++;
  return i;
}

/** Index just past the string whose opening quote is at `i`, or -1. */
function stringEnd(b: Buffer, i: number): number {
  // indexOf jumps over long contents natively; a quote preceded by an odd run of backslashes is escaped.
  for (let q = b.indexOf(QUOTE, i + 1); q !== -1; q = b.indexOf(QUOTE, q + 1)) {
    let k = q - 1;
    while (b[k] === BACKSLASH) k--;
    if ((q - k) % 2 === 1) return q + 1;
  }
  return -1;
}

/** Index just past the value that starts at `i`, or -1. */
function valueEnd(b: Buffer, i: number): number {
  const c = b[i];
  if (c === QUOTE) return stringEnd(b, i);
  if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
    let depth = 0;
    for (let j = i; j < b.length; j++) {
      const d = b[j];
      if (d === QUOTE) {
        j = stringEnd(b, j) - 1;
        if (j < 0) return -1;
      } else if (d === OPEN_OBJECT || d === OPEN_ARRAY) depth++;
      else if ((d === CLOSE_OBJECT || d === CLOSE_ARRAY) && --depth === 0) return j + 1;
    }
    return -1;
  }
  // A number, true, false or null: up to the next delimiter.
  let j = i;
  while (j < b.length && b[j] !== COMMA && b[j] !== CLOSE_OBJECT && b[j] !== CLOSE_ARRAY && !isSpace(b[j]))
    j++;
  return j > i ? j : -1;
}

/** The JSON string at [start, end) (quotes included), decoded. */
function decodeString(b: Buffer, start: number, end: number): string {
  for (let i = start + 1; i < end - 1; i++) {
    if (b[i] === BACKSLASH) return JSON.parse(b.toString('utf8', start, end)) as string;
  }
  return b.toString('utf8', start + 1, end - 1);
}

/** True when the key at [start, end) (quotes included) is `key` (ASCII), escapes decoded. */
function keyIs(b: Buffer, start: number, end: number, key: string): boolean {
  const len = end - start - 2;
  let escaped = false;
  for (let i = 0; i < len; i++) {
    const c = b[start + 1 + i];
    if (c === BACKSLASH) escaped = true;
    else if (!escaped && (i >= key.length || c !== key.charCodeAt(i))) return false;
  }
  return escaped ? decodeString(b, start, end) === key : len === key.length;
}

/** Where a value lies in the buffer: [start, end). */
export interface Span {
  start: number;
  end: number;
}

/**
 * The values of `keys` (ASCII) among the members of the object that starts at `at` (after any whitespace), and
 * where the object ends; a key that occurs twice counts as its last value, as in JSON.parse. Null when there is
 * no object at `at` or its bytes are not what valid JSON would be.
 */
export function objectMembers(
  b: Buffer,
  at: number,
  keys: readonly string[],
): { values: (Span | null)[]; end: number } | null {
  const values: (Span | null)[] = keys.map(() => null);
  let i = skipSpace(b, at);
  if (b[i] !== OPEN_OBJECT) return null;
  i = skipSpace(b, i + 1);
  if (b[i] === CLOSE_OBJECT) return { values, end: i + 1 };
  for (;;) {
    if (b[i] !== QUOTE) return null;
    const keyEnd = stringEnd(b, i);
    if (keyEnd < 0) return null;
    const colon = skipSpace(b, keyEnd);
    if (b[colon] !== COLON) return null;
    const start = skipSpace(b, colon + 1);
    const end = valueEnd(b, start);
    if (end < 0) return null;
    for (let k = 0; k < keys.length; k++) {
      if (keyIs(b, i, keyEnd, keys[k])) values[k] = { start, end };
    }
    i = skipSpace(b, end);
    if (b[i] === CLOSE_OBJECT) return { values, end: i + 1 };
    if (b[i] !== COMMA) return null;
    i = skipSpace(b, i + 1);
  }
}

/** What the chunk runner needs of a batch line. */
export interface RequestLine {
  customId: string;
  /** The request body's bytes as they are in the line. */
  body: Buffer;
  /** The body's "model", '' when it has none. */
  model: string;
}

const LINE_KEYS = ['custom_id', 'body'];
const BODY_KEYS = ['model'];

/** Reads a validated batch line (a JSON object with a string custom_id and an object body) without parsing it. */
export function scanRequestLine(line: Buffer): RequestLine | null {
  const top = objectMembers(line, 0, LINE_KEYS);
  const [id, body] = top?.values ?? [];
  if (!top || skipSpace(line, top.end) !== line.length || !id || !body || line[id.start] !== QUOTE)
    return null;
  const inner = objectMembers(line, body.start, BODY_KEYS);
  if (!inner) return null;
  const [model] = inner.values;
  return {
    customId: decodeString(line, id.start, id.end),
    body: line.subarray(body.start, body.end),
    model: model && line[model.start] === QUOTE ? decodeString(line, model.start, model.end) : '',
  };
}
