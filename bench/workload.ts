// Batch input files that look like real ones: chat requests with a system prompt and a user message (some
// with an earlier turn), 2–6 KB each (4 KB on average, so 50,000 lines make a file near 200 MB), and
// max_tokens spread over 32–160, which spreads the simulated generation times the way real answers do.
// The mix job (issue 12) also asks for other max_tokens ranges and for embeddings of texts of the same sizes.
import fs from 'node:fs';
import readline from 'node:readline';
import { mulberry32 } from '../src/shared/prng';

export const MIN_OUTPUT_TOKENS = 32;
export const MAX_OUTPUT_TOKENS = 160;

const WORDS = (
  'the of and to in a is that for it as was with be by on not he this are or his from at which but have an ' +
  'they you were her she there been one all we their has would when if so no what up out who them some into ' +
  'customer order invoice shipment delay refund account payment report quarter revenue forecast risk model ' +
  'data table summary review contract clause policy claim patient record visit note product feature release ' +
  'bug ticket priority owner deadline meeting budget estimate supplier region market growth decline trend ' +
  'please explain classify extract translate summarize compare list rewrite answer question because however'
).split(' ');

const SYSTEM_PROMPTS = [
  'You are a careful assistant that classifies customer support tickets into one of twelve categories and ' +
    'explains the choice in one sentence.',
  'You are an analyst. Summarize the document below in five bullet points, keeping every number exact.',
  'You extract structured fields (names, dates, amounts, parties) from contracts and answer in JSON.',
  'You translate the user text into plain English for a general audience, keeping the meaning intact.',
  'You are a helpful assistant. Answer the question using only the context given; say when it is not there.',
];

function prose(rand: () => number, chars: number): string {
  const out: string[] = [];
  let n = 0;
  let sentence = 0;
  while (n < chars) {
    let w = WORDS[Math.floor(rand() * WORDS.length)];
    if (sentence === 0) w = w[0].toUpperCase() + w.slice(1);
    sentence++;
    if (sentence > 8 && rand() < 0.15) {
      w += '.';
      sentence = 0;
    } else if (rand() < 0.05) w += ',';
    out.push(w);
    n += w.length + 1;
  }
  return out.join(' ');
}

export type WorkloadEndpoint = '/v1/chat/completions' | '/v1/embeddings';

export interface Workload {
  file: string;
  requests: number;
  bytes: number;
  endpoint: WorkloadEndpoint;
}

export interface WorkloadOptions {
  /** Chat only: `max_tokens` uniform in this range (default MIN_OUTPUT_TOKENS–MAX_OUTPUT_TOKENS). */
  maxTokens?: [number, number];
  /** `/v1/embeddings`: the user text of each line becomes the `input` to embed. */
  endpoint?: WorkloadEndpoint;
}

/**
 * Writes `requests` lines to `file`; `tag` makes custom_ids unique across the files of one run. Without
 * options the file is the same, byte for byte, for the same seed, so earlier rows stay comparable.
 */
export function writeWorkload(
  file: string,
  requests: number,
  seed: number,
  tag: string,
  opts: WorkloadOptions = {},
): Workload {
  const [minTokens, maxTokens] = opts.maxTokens ?? [MIN_OUTPUT_TOKENS, MAX_OUTPUT_TOKENS];
  const endpoint = opts.endpoint ?? '/v1/chat/completions';
  const rand = mulberry32(seed);
  const fd = fs.openSync(file, 'w');
  let pending: string[] = [];
  let pendingBytes = 0;
  let bytes = 0;
  const flush = () => {
    const buf = Buffer.from(pending.join(''));
    fs.writeSync(fd, buf);
    bytes += buf.length;
    pending = [];
    pendingBytes = 0;
  };
  for (let i = 0; i < requests; i++) {
    const size = 2000 + Math.floor(rand() * 4000);
    const messages: { role: string; content: string }[] = [
      { role: 'system', content: SYSTEM_PROMPTS[Math.floor(rand() * SYSTEM_PROMPTS.length)] },
    ];
    if (rand() < 0.3) {
      messages.push({ role: 'user', content: prose(rand, size * 0.3) });
      messages.push({ role: 'assistant', content: prose(rand, size * 0.15) });
      messages.push({ role: 'user', content: prose(rand, size * 0.45) });
    } else messages.push({ role: 'user', content: prose(rand, size * 0.9) });
    const body =
      endpoint === '/v1/embeddings'
        ? { model: 'sim-embed', input: messages[messages.length - 1].content }
        : {
            model: 'sim-model',
            messages,
            max_tokens: minTokens + Math.floor(rand() * (maxTokens - minTokens + 1)),
            temperature: 0.7,
          };
    const line = JSON.stringify({ custom_id: `${tag}-${i}`, method: 'POST', url: endpoint, body });
    pending.push(line + '\n');
    pendingBytes += line.length;
    if (pendingBytes > 1 << 20) flush();
  }
  flush();
  fs.closeSync(fd);
  return { file, requests, bytes, endpoint };
}

/** The request bodies of a JSONL file, serialized as BESH's worker sends them (only the body travels). */
export async function readBodies(file: string): Promise<string[]> {
  const bodies: string[] = [];
  const lines = readline.createInterface({ input: fs.createReadStream(file), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim()) bodies.push(JSON.stringify((JSON.parse(line) as { body: unknown }).body));
  }
  return bodies;
}
