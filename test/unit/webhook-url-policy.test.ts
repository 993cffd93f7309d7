import assert from 'node:assert/strict';
import dns from 'node:dns';
import os from 'node:os';
import { Refused } from '../../src/services/errors';
import {
  assertPublicTarget,
  guardedLookup,
  isPrivateAddress,
  parseWebhookUrl,
} from '../../src/webhooks/url-policy';

const refusedAs =
  (code: string, param = 'url') =>
  (err: unknown) =>
    err instanceof Refused && err.code === code && err.param === param;

describe('Webhook URL policy', () => {
  it('knows private, loopback, link-local and reserved addresses, in both families', () => {
    for (const ip of [
      '127.0.0.1',
      '10.1.2.3',
      '172.31.255.255',
      '192.168.0.10',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      '::',
      'fe80::1',
      'fd00::1',
      '::ffff:127.0.0.1',
      '::ffff:10.0.0.1',
      '::7f00:1',
      '64:ff9b:1::a00:1',
      '2001::1',
      'not-an-ip',
    ]) {
      assert.equal(isPrivateAddress(ip), true, ip);
    }
    for (const ip of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '2606:4700:4700::1111']) {
      assert.equal(isPrivateAddress(ip), false, ip);
    }
  });

  it('accepts absolute http(s) URLs without credentials', () => {
    assert.equal(
      parseWebhookUrl('https://example.com/hook?a=1', false).toString(),
      'https://example.com/hook?a=1',
    );
    assert.equal(parseWebhookUrl('http://8.8.8.8:8080/x', false).hostname, '8.8.8.8');
    for (const [raw, why] of [
      [undefined, 'missing'],
      ['', 'empty'],
      ['/relative', 'relative'],
      ['ftp://example.com/', 'scheme'],
      ['javascript:alert(1)', 'scheme'],
      ['https://user:pw@example.com/', 'credentials'],
      [`https://example.com/${'a'.repeat(2100)}`, 'too long'],
    ] as const) {
      assert.throws(() => parseWebhookUrl(raw, true), refusedAs('invalid_url'), why);
    }
  });

  it('refuses private targets unless the operator allows them', () => {
    for (const raw of [
      'http://127.0.0.1:9000/',
      'http://localhost/',
      'http://api.localhost/',
      'http://[::1]/',
      'http://169.254.169.254/latest/meta-data',
      'http://10.0.0.5/',
      'http://2130706433/', // 127.0.0.1 written as one number: URL normalises it
      'http://[::ffff:7f00:1]/',
      'http://[::127.0.0.1]/', // normalised to [::7f00:1]
    ]) {
      assert.throws(() => parseWebhookUrl(raw, false), refusedAs('invalid_url'), raw);
      assert.equal(parseWebhookUrl(raw, true).toString(), new URL(raw).toString());
    }
  });

  it('refuses a name that resolves to a private address, at registration and at connection', async function () {
    // The host's own name: not caught by name, only resolving it shows where it points.
    const name = os.hostname();
    const resolved = await dns.promises.lookup(name, { all: true }).catch(() => []);
    if (resolved.length === 0 || !resolved.every((a) => isPrivateAddress(a.address))) this.skip();
    const url = parseWebhookUrl(`http://${name}:9/hook`, false);
    await assert.rejects(
      assertPublicTarget(url, false),
      (err: Error) => refusedAs('invalid_url')(err) && /private/.test(err.message),
    );
    await assertPublicTarget(url, true);
    const err = await new Promise<NodeJS.ErrnoException | null>((resolve) =>
      guardedLookup(name, {}, (e) => resolve(e)),
    );
    assert.equal(err?.code, 'EPRIVATETARGET');
  });

  it('refuses a name that does not resolve', async () => {
    await assert.rejects(
      assertPublicTarget(new URL('http://no-such-host.invalid/'), false),
      (err: Error) => refusedAs('invalid_url')(err) && /does not resolve/.test(err.message),
    );
  });
});
