import dns, { type LookupAddress, type LookupOptions } from 'node:dns';
import net from 'node:net';
import { Refused } from '../services/errors';

export const WEBHOOK_URL_MAX_LENGTH = 2048;

// Loopback, private, link-local, shared (CGNAT), unspecified, multicast, reserved and documentation ranges:
// nothing a public webhook receiver lives on, and what a tenant could use to reach BESH's own network.
const BLOCKED = new net.BlockList();
for (const [net4, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  BLOCKED.addSubnet(net4, bits, 'ipv4');
}
for (const [net6, bits] of [
  ['::', 96], // unspecified, loopback and the old IPv4-compatible form ([::127.0.0.1])
  ['64:ff9b::', 96], // NAT64: an IPv4 address inside
  ['64:ff9b:1::', 48], // local-use NAT64
  ['100::', 64], // discard-only
  ['2001::', 32], // Teredo: an IPv4 address inside
  ['2002::', 16], // 6to4: an IPv4 address inside
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
  ['2001:db8::', 32],
] as const) {
  BLOCKED.addSubnet(net6, bits, 'ipv6');
}

/** True for an address no webhook may target unless the operator allows private targets. */
export function isPrivateAddress(ip: string): boolean {
  const family = net.isIP(ip);
  if (family === 0) return true; // not an address at all: refuse rather than guess
  // BlockList matches IPv4-mapped IPv6 (::ffff:10.0.0.1) against the IPv4 ranges too.
  return BLOCKED.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

const invalidUrl = (message: string) => new Refused('invalid', message, 'invalid_url', 'url');

/** The URL's host as an address when it is one (IPv6 without its brackets), else null. */
const hostAddress = (url: URL) => {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return net.isIP(host) ? host : null;
};

const isLocalName = (host: string) => host === 'localhost' || host.endsWith('.localhost');

/**
 * An absolute http(s) URL without credentials whose host is a public address or a name (not `localhost`);
 * refuses with the reason otherwise. Names are resolved separately (`assertPublicTarget`, `guardedLookup`).
 */
export function parseWebhookUrl(raw: unknown, allowPrivate: boolean): URL {
  if (typeof raw !== 'string' || raw.trim() === '') throw invalidUrl("'url' must be a non-empty string.");
  if (raw.length > WEBHOOK_URL_MAX_LENGTH) {
    throw invalidUrl(`'url' must be at most ${WEBHOOK_URL_MAX_LENGTH} characters.`);
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalidUrl("'url' must be an absolute URL, such as https://example.com/webhook.");
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw invalidUrl("'url' must start with https:// or http://.");
  }
  if (url.username || url.password) throw invalidUrl("'url' must not contain credentials.");
  if (!allowPrivate) {
    const address = hostAddress(url);
    if ((address && isPrivateAddress(address)) || isLocalName(url.hostname)) throw privateTarget();
  }
  return url;
}

const privateTarget = () =>
  new Refused(
    'invalid',
    "'url' points to a loopback, private or link-local address, which this server does not call (the operator can allow it with WEBHOOK_ALLOW_PRIVATE=true).",
    'invalid_url',
    'url',
  );

const LOOKUP_TIMEOUT_MS = 5000;

/** Refuses a host name that resolves to any private address, or does not resolve (within 5 s). */
export async function assertPublicTarget(url: URL, allowPrivate: boolean): Promise<void> {
  if (allowPrivate || hostAddress(url)) return;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timeout')), LOOKUP_TIMEOUT_MS);
  });
  let addresses: LookupAddress[];
  try {
    addresses = await Promise.race([dns.promises.lookup(url.hostname, { all: true }), timeout]);
  } catch {
    throw invalidUrl(`'url' names a host that does not resolve: ${url.hostname.slice(0, 200)}.`);
  } finally {
    clearTimeout(timer);
  }
  if (addresses.length === 0 || addresses.some((a) => isPrivateAddress(a.address))) throw privateTarget();
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/**
 * `dns.lookup` for the delivery's socket that fails on a private address: the check and the connection use the
 * same answer, so a name that re-resolves to an internal address between the two (DNS rebinding) gets nowhere.
 */
export function guardedLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    const blocked = addresses.find((a) => isPrivateAddress(a.address));
    if (blocked || addresses.length === 0) {
      const refused = Object.assign(new Error(`${hostname} resolves to a private address`), {
        code: 'EPRIVATETARGET',
      });
      return callback(refused, []);
    }
    if (options.all) return callback(null, addresses);
    callback(null, addresses[0].address, addresses[0].family);
  });
}
