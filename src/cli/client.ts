import OpenAI from 'openai';
import { UsageError } from './args';

export const DEFAULT_BASE_URL = 'http://127.0.0.1:5000/v1';

/** Every API command takes these; they win over BESH_BASE_URL and BESH_API_KEY. */
export const CONNECTION_OPTIONS = {
  'base-url': { type: 'string' },
  'api-key': { type: 'string' },
} as const;

export const CONNECTION_HELP = `Connection: --base-url URL (or BESH_BASE_URL, default ${DEFAULT_BASE_URL})
            --api-key KEY (or BESH_API_KEY; the variable keeps the key out of the process list)`;

type Env = Record<string, string | undefined>;

/** The SDK client for BESH, or a usage error naming the flag or variable that is missing or wrong. */
export function createClient(
  flags: { 'base-url'?: string; 'api-key'?: string },
  env: Env = process.env,
): OpenAI {
  const apiKey = flags['api-key']?.trim() || env.BESH_API_KEY?.trim();
  if (!apiKey) {
    throw new UsageError(
      'no API key: set BESH_API_KEY (or pass --api-key); an operator creates one with `besh keys create`',
    );
  }
  const source = flags['base-url'] ? '--base-url' : 'BESH_BASE_URL';
  const raw = flags['base-url']?.trim() || env.BESH_BASE_URL?.trim() || DEFAULT_BASE_URL;
  let url: URL;
  try {
    url = new URL(raw);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error();
  } catch {
    throw new UsageError(`${source} must be an http:// or https:// URL (got "${raw}")`);
  }
  // Operators type the server's address; the API lives under /v1, as in OpenAI's base URL.
  if (url.pathname === '/') url.pathname = '/v1';
  return new OpenAI({ apiKey, baseURL: url.toString().replace(/\/+$/, '') });
}
