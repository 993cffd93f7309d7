import { hash } from 'node:crypto';
import type { BatchResultLine } from '../shared/openai';

export interface Usage {
  inputTokens: number;
  cachedTokens: number;
  outputTokens: number;
  reasoningTokens: number;
}

export const zeroUsage = (): Usage => ({
  inputTokens: 0,
  cachedTokens: 0,
  outputTokens: 0,
  reasoningTokens: 0,
});

export function addUsage(into: Usage, u: Usage): void {
  into.inputTokens += u.inputTokens;
  into.cachedTokens += u.cachedTokens;
  into.outputTokens += u.outputTokens;
  into.reasoningTokens += u.reasoningTokens;
}

/** Stable per request, so a line written again after a retry is byte-identical. */
export const resultLineId = (batchId: string, customId: string) =>
  `batch_req_${hash('sha256', `${batchId}\n${customId}`).slice(0, 24)}`;

export const errorLine = (
  batchId: string,
  customId: string,
  code: string,
  message: string,
): BatchResultLine => ({
  id: resultLineId(batchId, customId),
  custom_id: customId,
  response: null,
  error: { code, message },
});

/**
 * An answer's result line: the same bytes as JSON.stringify of {id, custom_id, response: {status_code, request_id,
 * body}, error: null}, with the body's JSON text spliced in rather than parsed and serialised again. `bodyJson`
 * must be valid JSON on one line (Upstream's `json`).
 */
export const responseLine = (
  batchId: string,
  customId: string,
  statusCode: number,
  requestId: string,
  bodyJson: string,
): string =>
  `{"id":"${resultLineId(batchId, customId)}","custom_id":${JSON.stringify(customId)},` +
  `"response":{"status_code":${statusCode},"request_id":${JSON.stringify(requestId)},"body":${bodyJson}},` +
  `"error":null}`;

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/** Token usage from any endpoint's response body (chat/completions/embeddings or the Responses API). */
export function usageOf(body: unknown): Usage {
  const u = (body as { usage?: Record<string, unknown> } | null)?.usage;
  if (!u || typeof u !== 'object') return zeroUsage();
  const details = (k: string) => (u[k] ?? {}) as Record<string, unknown>;
  return {
    inputTokens: num(u.prompt_tokens ?? u.input_tokens),
    cachedTokens: num(
      details('prompt_tokens_details').cached_tokens ?? details('input_tokens_details').cached_tokens,
    ),
    outputTokens: num(u.completion_tokens ?? u.output_tokens),
    reasoningTokens: num(
      details('completion_tokens_details').reasoning_tokens ??
        details('output_tokens_details').reasoning_tokens,
    ),
  };
}
