// Deterministic answers of the vLLM simulator. Pure functions, shared by the server and by tests, so that
// any output line can be proven to belong to its input: every generated text starts with a fingerprint
// of the request body, and every embedding is derived from a fingerprint of its input.
import { createHash } from 'node:crypto';

export type Endpoint = '/v1/chat/completions' | '/v1/completions' | '/v1/embeddings' | '/v1/responses';

export const DEFAULT_OUTPUT_TOKENS = 16;
export const MAX_OUTPUT_TOKENS = 4096;
export const EMBEDDING_DIM = 8;

const PROMPT_FIELD: Record<Endpoint, string> = {
  '/v1/chat/completions': 'messages',
  '/v1/completions': 'prompt',
  '/v1/embeddings': 'input',
  '/v1/responses': 'input',
};
const FILLER = ['lorem', 'ipsum', 'dolor', 'sit', 'amet', 'consectetur', 'adipiscing', 'elit'];

export function fingerprint(body: unknown): string {
  // JSON.stringify(undefined) is undefined; hash something stable instead of throwing.
  return createHash('sha256')
    .update(JSON.stringify(body) ?? 'undefined')
    .digest('hex')
    .slice(0, 16);
}

/** Every generated text (chat, completion, response) starts with this. */
export function expectedContentPrefix(body: unknown): string {
  return `SIM ${fingerprint(body)}`;
}

/** The vector the simulator returns for one embedding input (before any base64 encoding). */
export function expectedEmbedding(input: unknown): number[] {
  const fp = fingerprint(input);
  return Array.from(
    { length: EMBEDDING_DIM },
    (_, i) => (parseInt(fp.slice(2 * i, 2 * i + 2), 16) - 127.5) / 127.5,
  );
}

/** Inputs of an embeddings request: an array is a batch, unless it is a single list of token ids. */
export function embeddingInputs(input: unknown): unknown[] {
  return Array.isArray(input) && typeof input[0] !== 'number' ? input : [input];
}

export function promptTokens(endpoint: Endpoint, body: Record<string, unknown>): number {
  return Math.ceil((JSON.stringify(body[PROMPT_FIELD[endpoint]]) ?? '').length / 4);
}

export function outputTokens(
  endpoint: Endpoint,
  body: Record<string, unknown>,
  defaultOutputTokens = DEFAULT_OUTPUT_TOKENS,
): number {
  if (endpoint === '/v1/embeddings') return 0;
  const requested = body.max_tokens ?? body.max_completion_tokens ?? body.max_output_tokens;
  const n = typeof requested === 'number' && requested >= 1 ? Math.floor(requested) : defaultOutputTokens;
  return Math.min(n, MAX_OUTPUT_TOKENS);
}

/** `n` whitespace-separated words ("tokens"); never shorter than the prefix, which must stay provable. */
function generatedText(body: unknown, n: number): string {
  const words = [expectedContentPrefix(body)];
  for (let i = 2; i < n; i++) words.push(FILLER[i % FILLER.length]);
  return words.join(' ');
}

function float32Base64(v: number[]): string {
  return Buffer.from(new Float32Array(v).buffer).toString('base64');
}

/** `requestId` is a hex string; it becomes the body id (`chatcmpl-<requestId>`, `resp_<requestId>`, …). */
export function simulatedResponse(
  endpoint: Endpoint,
  body: Record<string, unknown>,
  opts: { requestId: string; created: number; defaultOutputTokens?: number },
): { json: object; outputTokens: number } {
  const { requestId: id, created } = opts;
  const model = body.model;
  const prompt = promptTokens(endpoint, body);
  const output = outputTokens(endpoint, body, opts.defaultOutputTokens);
  const usage = { prompt_tokens: prompt, completion_tokens: output, total_tokens: prompt + output };
  switch (endpoint) {
    case '/v1/chat/completions':
      return {
        outputTokens: output,
        json: {
          id: `chatcmpl-${id}`,
          object: 'chat.completion',
          created,
          model,
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: generatedText(body, output), tool_calls: [] },
              logprobs: null,
              finish_reason: 'stop',
            },
          ],
          usage,
        },
      };
    case '/v1/completions':
      return {
        outputTokens: output,
        json: {
          id: `cmpl-${id}`,
          object: 'text_completion',
          created,
          model,
          choices: [{ index: 0, text: generatedText(body, output), logprobs: null, finish_reason: 'stop' }],
          usage,
        },
      };
    case '/v1/embeddings': {
      // The official SDK asks for base64 unless told otherwise; answering floats would break it.
      const base64 = body.encoding_format === 'base64';
      const data = embeddingInputs(body.input).map((input, index) => {
        const v = expectedEmbedding(input);
        return { object: 'embedding', index, embedding: base64 ? float32Base64(v) : v };
      });
      return { outputTokens: 0, json: { id: `embd-${id}`, object: 'list', created, model, data, usage } };
    }
    case '/v1/responses':
      return {
        outputTokens: output,
        json: {
          id: `resp_${id}`,
          object: 'response',
          created_at: created,
          status: 'completed',
          error: null,
          incomplete_details: null,
          model,
          output: [
            {
              type: 'message',
              id: `msg_${id}`,
              status: 'completed',
              role: 'assistant',
              content: [{ type: 'output_text', text: generatedText(body, output), annotations: [] }],
            },
          ],
          usage: {
            input_tokens: prompt,
            input_tokens_details: { cached_tokens: 0 },
            output_tokens: output,
            output_tokens_details: { reasoning_tokens: 0 },
            total_tokens: prompt + output,
          },
        },
      };
  }
}
