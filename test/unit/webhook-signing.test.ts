import assert from 'node:assert/strict';
import OpenAI, { InvalidWebhookSignatureError } from 'openai';
import { eventOf, eventPayload } from '../../src/webhooks/events';
import { newWebhookSecret, signatureHeaders } from '../../src/webhooks/signing';

describe('Webhook signing, checked by the official SDK', () => {
  const client = new OpenAI({ apiKey: 'unused' });
  const event = eventOf({ batchId: 'batch_abc', owner: 't', status: 'completed', at: 1_700_000_000 })!;
  const body = eventPayload(event);

  it('makes secrets as OpenAI shows them: whsec_ and 32 bytes in base64', () => {
    const secret = newWebhookSecret();
    assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
    assert.equal(Buffer.from(secret.slice(6), 'base64').length, 32);
    assert.notEqual(newWebhookSecret(), secret);
  });

  it('signs so that webhooks.unwrap accepts and parses the event', async () => {
    const secret = newWebhookSecret();
    const parsed = await client.webhooks.unwrap(body, signatureHeaders(secret, event.id, body), secret);
    assert.deepEqual(parsed, {
      id: event.id,
      object: 'event',
      type: 'batch.completed',
      created_at: 1_700_000_000,
      data: { id: 'batch_abc' },
    });
  });

  it('is refused with a changed body, another secret or an old timestamp', async () => {
    const secret = newWebhookSecret();
    const headers = signatureHeaders(secret, event.id, body);
    const refused = (p: Promise<unknown>) => assert.rejects(p, InvalidWebhookSignatureError);
    await refused(client.webhooks.unwrap(body.replace('batch_abc', 'batch_abd'), headers, secret));
    await refused(client.webhooks.unwrap(body, headers, newWebhookSecret()));
    await refused(client.webhooks.unwrap(body, { ...headers, 'webhook-id': 'evt_other' }, secret));
    const old = Math.floor(Date.now() / 1000) - 3600;
    await assert.rejects(
      client.webhooks.unwrap(body, signatureHeaders(secret, event.id, body, old), secret),
      /too old/,
    );
  });

  it('gives each batch event one stable id, and none for a status that is not final', () => {
    const again = eventOf({ batchId: 'batch_abc', owner: 't', status: 'completed', at: 1 })!;
    assert.equal(again.id, event.id);
    assert.match(event.id, /^evt_[0-9a-f]{32}$/);
    assert.notEqual(eventOf({ batchId: 'batch_abc', owner: 't', status: 'failed', at: 1 })!.id, event.id);
    assert.notEqual(eventOf({ batchId: 'batch_abd', owner: 't', status: 'completed', at: 1 })!.id, event.id);
    assert.equal(eventOf({ batchId: 'batch_abc', owner: 't', status: 'finalizing', at: 1 }), null);
  });
});
