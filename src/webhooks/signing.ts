import { createHmac, randomBytes } from 'node:crypto';

const PREFIX = 'whsec_';

/** A new endpoint secret as OpenAI shows it: `whsec_` and 32 random bytes in base64. */
export const newWebhookSecret = () => PREFIX + randomBytes(32).toString('base64');

/**
 * Standard Webhooks headers, as OpenAI sends them and its SDKs' `webhooks.unwrap` checks them: an HMAC-SHA256 of
 * `${id}.${timestamp}.${body}`, keyed with the secret's bytes after `whsec_`.
 */
export function signatureHeaders(
  secret: string,
  id: string,
  body: string,
  timestamp = Math.floor(Date.now() / 1000),
): Record<'webhook-id' | 'webhook-timestamp' | 'webhook-signature', string> {
  // The SDKs' rule: the bytes after `whsec_` in base64, or else the whole secret as text.
  const key = secret.startsWith(PREFIX)
    ? Buffer.from(secret.slice(PREFIX.length), 'base64')
    : Buffer.from(secret, 'utf8');
  const mac = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64');
  return { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': `v1,${mac}` };
}
