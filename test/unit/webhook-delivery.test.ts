import assert from 'node:assert/strict';
import dns from 'node:dns';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { DataSource } from 'typeorm';
import { loadConfig } from '../../src/config';
import { openDatabase } from '../../src/db/data-source';
import { WebhookDeliveryEntity, WebhookEndpointEntity } from '../../src/db/entities';
import { DeliveryFailed, deliverOnce, markFailed, planDeliveries } from '../../src/webhooks/delivery';
import { eventOf } from '../../src/webhooks/events';
import { newWebhookSecret } from '../../src/webhooks/signing';
import { isPrivateAddress } from '../../src/webhooks/url-policy';

// One attempt of the delivery activity against a receiver on loopback, on an SQLite database.
describe('Webhook delivery attempts', () => {
  let dir: string;
  let db: DataSource;
  let server: http.Server;
  let port: number;
  let answer = 200;
  let received = 0;
  const event = eventOf({ batchId: 'batch_x', owner: 'tenant_a', status: 'completed', at: 1000 })!;
  const key = { eventId: event.id, endpointId: 'we_1' };
  const row = () => db.getRepository(WebhookDeliveryEntity).findOneByOrFail(key);
  const endpoint = (url: string, events = ['batch.completed']) =>
    db.getRepository(WebhookEndpointEntity).save({
      id: 'we_1',
      owner: 'tenant_a',
      url,
      events,
      secret: newWebhookSecret(),
      createdAt: 1,
    });
  const attempt = (allowPrivate: boolean, n = 1) =>
    deliverOnce(db, { event, endpointId: 'we_1' }, { allowPrivate, attempt: n });

  before(async () => {
    server = http.createServer((req, res) => {
      received++;
      req.resume().on('end', () => res.writeHead(answer).end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  after(() => new Promise((resolve) => server.close(resolve)));
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'besh-webhooks-'));
    db = await openDatabase(loadConfig({ DATA_DIR: dir }));
    received = 0;
    answer = 200;
  });
  afterEach(async () => {
    await db.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('plans one row per subscribed endpoint of the owner, once however often it is asked', async () => {
    await endpoint(`http://127.0.0.1:${port}/`);
    await db.getRepository(WebhookEndpointEntity).save([
      {
        id: 'we_2',
        owner: 'tenant_a',
        url: 'https://e.com/',
        events: ['batch.failed'],
        secret: 's',
        createdAt: 1,
      },
      {
        id: 'we_3',
        owner: 'tenant_b',
        url: 'https://e.com/',
        events: ['batch.completed'],
        secret: 's',
        createdAt: 1,
      },
    ]);
    assert.deepEqual(await planDeliveries(db, event), ['we_1']);
    assert.deepEqual(await planDeliveries(db, event), ['we_1']);
    assert.equal(await db.getRepository(WebhookDeliveryEntity).count(), 1);
    assert.equal((await row()).state, 'pending');
  });

  it('records a 2xx as delivered, a 5xx as a failed attempt to retry, and a 410 as gone', async () => {
    await endpoint(`http://127.0.0.1:${port}/`);
    await planDeliveries(db, event);
    answer = 503;
    await assert.rejects(attempt(true, 1), DeliveryFailed);
    const failed = await row();
    assert.deepEqual(
      [failed.state, failed.attempts, failed.lastStatusCode, failed.lastError],
      ['pending', 1, 503, 'HTTP 503'],
    );
    answer = 204;
    assert.equal(await attempt(true, 2), 'delivered');
    const done = await row();
    assert.equal(done.state, 'delivered');
    assert.equal(done.attempts, 2);
    assert.ok(done.deliveredAt);
    answer = 410;
    assert.equal(await attempt(true, 3), 'gone');
    assert.equal((await row()).state, 'gone');
    assert.equal(received, 3);
  });

  it('records a receiver that cannot be reached, and a delivery that ran out of retries', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as { port: number }).port;
    await new Promise((resolve) => closed.close(resolve));
    await endpoint(`http://127.0.0.1:${closedPort}/`);
    await planDeliveries(db, event);
    await assert.rejects(attempt(true), DeliveryFailed);
    assert.match((await row()).lastError ?? '', /ECONNREFUSED/);
    await markFailed(db, event.id, 'we_1');
    assert.equal((await row()).state, 'failed');
  });

  it('stops for a deleted endpoint and refuses a private target without calling it', async () => {
    await endpoint(`http://127.0.0.1:${port}/`);
    await planDeliveries(db, event);
    assert.equal(await attempt(false), 'refused');
    assert.match((await row()).lastError ?? '', /private/);
    await db.getRepository(WebhookEndpointEntity).delete({ id: 'we_1' });
    assert.equal(await attempt(true), 'endpoint_deleted');
    assert.equal((await row()).state, 'endpoint_deleted');
    assert.equal(received, 0);
  });

  it('refuses at connection a name that resolves to a private address (no rebinding past the check)', async function () {
    const name = os.hostname();
    const resolved = await dns.promises.lookup(name, { all: true }).catch(() => []);
    if (resolved.length === 0 || !resolved.every((a) => isPrivateAddress(a.address))) this.skip();
    // Registered while allowed, say, or while the name pointed elsewhere: only the connection's lookup stops it.
    await endpoint(`http://${name}:${port}/`);
    await planDeliveries(db, event);
    assert.equal(await attempt(false), 'refused');
    assert.match((await row()).lastError ?? '', /EPRIVATETARGET/);
    assert.equal(received, 0);
    assert.equal(await attempt(true), 'delivered', 'allowed, the same name is called');
    assert.equal(received, 1);
  });
});
