import type OpenAI from 'openai';
import { isTerminal } from '../batches/lifecycle';
import { intOption, parseCommand, takePositionals, UsageError } from './args';
import { CONNECTION_HELP, CONNECTION_OPTIONS, createClient } from './client';
import { countsText, errorTexts, plural, requireCompleted } from './format';

export const GET_USAGE = `usage: besh get ID [--lines N]
       besh get ID --partial [--errors] [--after CURSOR] [--follow]

Shows a batch's status and counts, then the first N lines (default 10) of its output file, and of its error
file when some requests failed. The lines go to stdout as JSONL (pipe them to jq); the rest goes to stderr.
Only the lines shown are downloaded.

--partial prints the result lines answered so far, running or not (the error lines with --errors), then the
cursor to go on from: --after CURSOR prints only the lines answered since. --follow keeps printing lines as
they are answered until the batch ends. Every line is printed once.
${CONNECTION_HELP}`;

/** How often --follow asks for new lines when a page came back empty. */
const FOLLOW_POLL_MS = 1000;

/**
 * Prints the lines of GET /v1/batches/{id}/partial_results page after page: until the batch has no more lines
 * (always with --follow), or else until a page comes back empty. Returns the cursor to continue from.
 */
async function printPartial(
  client: OpenAI,
  id: string,
  opts: { kind: 'output' | 'error'; after?: string; follow: boolean; pollMs?: number },
): Promise<{ after: string; lines: number; finished: boolean }> {
  let after = opts.after;
  let lines = 0;
  for (;;) {
    const res = await client
      .get(`/batches/${encodeURIComponent(id)}/partial_results`, {
        query: { kind: opts.kind, after, limit: 10_000 },
      })
      .asResponse();
    const text = await res.text();
    if (text) process.stdout.write(text);
    const count = text.split('\n').filter(Boolean).length;
    lines += count;
    after = res.headers.get('x-next-after') ?? after;
    const finished = res.headers.get('x-has-more') === 'false';
    if (finished || (count === 0 && !opts.follow)) return { after: after ?? '', lines, finished };
    if (count === 0) await new Promise((r) => setTimeout(r, opts.pollMs ?? FOLLOW_POLL_MS));
  }
}

/**
 * The first `n` non-blank lines of a stream. It stops reading there and cancels the stream, so showing 5
 * lines of a 200 MB file downloads little more than those 5 lines.
 */
export async function firstLines(body: ReadableStream<Uint8Array>, n: number): Promise<string[]> {
  const lines: string[] = [];
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let partial = '';
  try {
    while (lines.length < n) {
      const { done, value } = await reader.read();
      partial += done ? decoder.decode() : decoder.decode(value, { stream: true });
      const parts = partial.split('\n');
      // The last piece is a line still arriving, unless the stream ended.
      partial = done ? '' : (parts.pop() ?? '');
      lines.push(...parts.map((l) => l.replace(/\r$/, '')).filter((l) => l.trim() !== ''));
      if (done) break;
    }
  } finally {
    await reader.cancel();
  }
  return lines.slice(0, n);
}

async function showLines(client: OpenAI, fileId: string, kind: string, n: number): Promise<void> {
  const res = await client.files.content(fileId);
  const lines = res.body ? await firstLines(res.body, n) : [];
  console.error(`${kind} file ${fileId}: first ${plural(lines.length, 'line')}`);
  for (const line of lines) console.log(line);
}

export async function get(args: string[]): Promise<void> {
  const { values, positionals } = parseCommand(args, GET_USAGE, {
    ...CONNECTION_OPTIONS,
    lines: { type: 'string' },
    partial: { type: 'boolean' },
    errors: { type: 'boolean' },
    after: { type: 'string' },
    follow: { type: 'boolean' },
  });
  const [id] = takePositionals(positionals, ['ID'], GET_USAGE);
  if (!values.partial && (values.errors || values.after !== undefined || values.follow))
    throw new UsageError(`--errors, --after and --follow go with --partial\n\n${GET_USAGE}`);
  if (values.partial) {
    const kind = values.errors ? 'error' : 'output';
    const r = await printPartial(createClient(values), id, {
      kind,
      after: values.after,
      follow: !!values.follow,
    });
    console.error(
      `${plural(r.lines, `${kind} line`)}; ${r.finished ? 'that is all of them' : 'more may come'}: go on with --after ${r.after}`,
    );
    return;
  }
  const n = intOption(values.lines, '--lines', 10, 0);
  const client = createClient(values);
  const b = await client.batches.retrieve(id);
  console.error(`${b.id} ${b.status}: ${countsText(b)}`);
  for (const e of errorTexts(b)) console.error(`  ${e}`);
  if (n > 0) {
    if (b.output_file_id) await showLines(client, b.output_file_id, 'output', n);
    else console.error(isTerminal(b.status) ? 'no output file' : 'no output file yet');
    if (b.error_file_id && b.request_counts?.failed) await showLines(client, b.error_file_id, 'error', n);
  }
  requireCompleted(b);
}
