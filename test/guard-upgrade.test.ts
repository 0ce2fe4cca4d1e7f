import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { AddressLimits } from '../src/guard/ip-limits';
import { ClientAddressResolver, limitKey, parseAddress } from '../src/guard/client-address';
import { RawClient, type TestGateway, metric, sleep, startGateway, SINGLE_THREAD_ONLY } from './helpers/gateway';

// Origin policy and per-address limits, over real sockets against an in-process gateway. Loopback is
// a whole /8 on Linux, so 127.0.0.2, 127.0.0.3 … are distinct client addresses on one machine.

interface UpgradeAnswer {
  readonly status: number;
  readonly code?: string;
}

/** One upgrade request over a fresh TCP connection: 101 (then dropped), or the refusal's status and body code. */
function upgrade(url: string, headers: Record<string, string> = {}, localAddress?: string): Promise<UpgradeAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url.replace(/^ws/, 'http'), {
      localAddress,
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', ...headers },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0 });
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, code: (JSON.parse(body) as { code: string }).code }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Opens a WebSocket from a given loopback address, with extra headers. */
const openFrom = (url: string, localAddress: string, headers: Record<string, string> = {}) => RawClient.open(url, undefined, headers, { localAddress });

describe('origin policy (--allowed-origins)', () => {
  let open: TestGateway;
  let listed: TestGateway;
  before(async () => {
    open = await startGateway();
    listed = await startGateway(['--allowed-origins', 'https://app.example.com, https://*.example.org:8443']);
  });
  after(async () => {
    await open.stop();
    await listed.stop();
  });

  it('default: no Origin and the gateway\'s own host are accepted; any other origin is refused 403 before a socket exists', { skip: SINGLE_THREAD_ONLY }, async () => {
    assert.deepEqual(await upgrade(open.ws), { status: 101 });
    assert.deepEqual(await upgrade(open.ws, { origin: `http://127.0.0.1:${open.port}` }), { status: 101 });
    // The page opened by name rather than address: the Host header is what the browser sent.
    assert.deepEqual(await upgrade(open.ws, { origin: `http://localhost:${open.port}`, host: `localhost:${open.port}` }), { status: 101 });
    const accepted = open.gw.stats.upgrades.accepted;
    assert.deepEqual(await upgrade(open.ws, { origin: 'https://evil.example' }), { status: 403, code: 'origin_not_allowed' });
    assert.deepEqual(await upgrade(open.ws, { origin: `http://127.0.0.1:${open.port + 1}` }), { status: 403, code: 'origin_not_allowed' });
    assert.deepEqual(await upgrade(open.ws, { origin: 'null' }), { status: 403, code: 'origin_not_allowed' });
    assert.equal(open.gw.stats.upgrades.accepted, accepted, 'no socket was opened for a refused origin');
    assert.equal(await metric(open.http, 'wsgate_connections_total{result="origin_not_allowed"}'), 3);
  });

  it('a list: exact origins and wildcard subdomains (scheme and port must match)', async () => {
    const ok = ['https://app.example.com', 'HTTPS://APP.EXAMPLE.COM', 'https://app.example.com:443', 'https://a.example.org:8443', 'https://x.y.example.org:8443'];
    const refused = ['http://app.example.com', 'https://app.example.com:8443', 'https://example.org:8443', 'https://a.example.org', 'https://evilexample.org:8443', 'https://a.example.org.evil:8443'];
    for (const origin of ok) assert.equal((await upgrade(listed.ws, { origin })).status, 101, origin);
    for (const origin of refused) assert.deepEqual(await upgrade(listed.ws, { origin }), { status: 403, code: 'origin_not_allowed' }, origin);
    assert.equal((await upgrade(listed.ws, { origin: `http://127.0.0.1:${listed.port}` })).status, 101, 'own host still accepted');
  });

  it('a malformed entry stops startup with a message naming the key', async () => {
    await assert.rejects(startGateway(['--allowed-origins', 'app.example.com']), /allowedOrigins.*expected comma-separated origins/);
    await assert.rejects(startGateway(['--trusted-proxies', '10.0.0.0/33']), /trustedProxies/);
  });
});

describe('per-address limits', () => {
  it('--max-connections-per-ip: the next upgrade from that address gets 429; other addresses are unaffected; a close frees a slot', { skip: SINGLE_THREAD_ONLY }, async () => {
    const g = await startGateway(['--max-connections-per-ip', '2']);
    try {
      const a = [await openFrom(g.ws, '127.0.0.2'), await openFrom(g.ws, '127.0.0.2')];
      assert.deepEqual(await upgrade(g.ws, {}, '127.0.0.2'), { status: 429, code: 'too_many_connections_per_ip' });
      const bystander = await openFrom(g.ws, '127.0.0.3');
      assert.equal(bystander.closeCode, null);
      (a[0] as RawClient).close();
      await (a[0] as RawClient).closed();
      await sleep(50);
      assert.equal((await upgrade(g.ws, {}, '127.0.0.2')).status, 101);
      assert.equal(await metric(g.http, 'wsgate_connections_total{result="ip_limit"}'), 1);
      for (const c of [...a, bystander]) c.close();
      await sleep(100);
      assert.equal(g.gw.stats.connections, 0);
      assert.equal(await metric(g.http, 'wsgate_client_addresses'), 0, 'addresses with no connection are forgotten (no rate limit set)');
    } finally {
      await g.stop();
    }
  });

  it('--connect-rate-per-ip: a burst of twice the rate, then 429 until the bucket refills', async () => {
    const g = await startGateway(['--connect-rate-per-ip', '2']);
    try {
      const answers: number[] = [];
      for (let i = 0; i < 6; i++) answers.push((await upgrade(g.ws, {}, '127.0.0.4')).status);
      // The burst is 4; the few ms these take refill far less than one token.
      assert.deepEqual(answers, [101, 101, 101, 101, 429, 429]);
      assert.deepEqual(await upgrade(g.ws, {}, '127.0.0.4'), { status: 429, code: 'connect_rate_limited' });
      assert.equal((await upgrade(g.ws, {}, '127.0.0.5')).status, 101, 'another address has its own bucket');
      await sleep(1100); // 2 per second: at least two tokens back
      assert.equal((await upgrade(g.ws, {}, '127.0.0.4')).status, 101);
      assert.equal(await metric(g.http, 'wsgate_connections_total{result="ip_rate"}'), 3);
    } finally {
      await g.stop();
    }
  });

  it('X-Forwarded-For counts only from --trusted-proxies, right-most untrusted hop; IPv6 clients count per /64', async () => {
    const g = await startGateway(['--max-connections-per-ip', '1', '--trusted-proxies', '127.0.0.1/32, 10.0.0.0/8']);
    try {
      const held = await openFrom(g.ws, '127.0.0.1', { 'x-forwarded-for': '203.0.113.5' });
      assert.equal(held.closeCode, null);
      assert.deepEqual(await upgrade(g.ws, { 'x-forwarded-for': '203.0.113.5' }, '127.0.0.1'), { status: 429, code: 'too_many_connections_per_ip' });
      // A client cannot escape by prepending addresses: the proxy appended the real one on the right.
      assert.deepEqual(await upgrade(g.ws, { 'x-forwarded-for': '198.51.100.9, 203.0.113.5' }, '127.0.0.1'), { status: 429, code: 'too_many_connections_per_ip' });
      // Trusted hops on the right are skipped.
      assert.deepEqual(await upgrade(g.ws, { 'x-forwarded-for': '203.0.113.5, 10.1.2.3' }, '127.0.0.1'), { status: 429, code: 'too_many_connections_per_ip' });
      const other = await openFrom(g.ws, '127.0.0.1', { 'x-forwarded-for': '203.0.113.6' });
      assert.equal(other.closeCode, null);
      // An untrusted peer's header is ignored: it counts as itself.
      const direct = await openFrom(g.ws, '127.0.0.7', { 'x-forwarded-for': '203.0.113.99' });
      assert.deepEqual(await upgrade(g.ws, { 'x-forwarded-for': '203.0.113.100' }, '127.0.0.7'), { status: 429, code: 'too_many_connections_per_ip' });
      // One IPv6 /64 is one client.
      const v6 = await openFrom(g.ws, '127.0.0.1', { 'x-forwarded-for': '2001:db8:0:1::1' });
      assert.deepEqual(await upgrade(g.ws, { 'x-forwarded-for': '2001:db8:0:1:ffff::2' }, '127.0.0.1'), { status: 429, code: 'too_many_connections_per_ip' });
      assert.equal((await upgrade(g.ws, { 'x-forwarded-for': '2001:db8:0:2::1' }, '127.0.0.1')).status, 101);
      for (const c of [held, other, direct, v6]) c.close();
    } finally {
      await g.stop();
    }
  });

  it('an IPv6 peer (uWS reports it fully expanded) matches an IPv6 trusted-proxy CIDR', async () => {
    const g = await startGateway(['--host', '::1', '--max-connections-per-ip', '1', '--trusted-proxies', '::1/128']);
    const url = `ws://[::1]:${g.port}/ws`;
    try {
      const a = await RawClient.open(url, undefined, { 'x-forwarded-for': '192.0.2.1' });
      assert.equal((await upgrade(url, { 'x-forwarded-for': '192.0.2.2' })).status, 101, 'counted per forwarded address, not per ::1');
      assert.deepEqual(await upgrade(url, { 'x-forwarded-for': '192.0.2.1' }), { status: 429, code: 'too_many_connections_per_ip' });
      a.close();
    } finally {
      await g.stop();
    }
  });

  it('the address table is bounded: entries without connections beyond the cap are evicted', () => {
    const limits = new AddressLimits(5, 1, 100);
    const now = 1_000_000;
    for (let i = 0; i < 10_000; i++) limits.admit(`10.0.${i >> 8}.${i & 255}`, now);
    assert.ok(limits.size <= 100, `size ${limits.size}`);
    // Held connections are never evicted (they are bounded by --max-connections instead).
    for (let i = 0; i < 150; i++) limits.opened(`192.0.2.${i}`, now);
    limits.admit('198.51.100.1', now);
    assert.equal(limits.size, 151);
    for (let i = 0; i < 150; i++) limits.closed(`192.0.2.${i}`, now + 60_000);
    limits.sweep(now + 60_000);
    assert.equal(limits.size, 0, 'refilled and unconnected: forgotten');
    limits.stop();
  });

  it('address parsing: canonical forms, IPv4-mapped IPv6 as IPv4, garbage refused', () => {
    assert.deepEqual(parseAddress('0000:0000:0000:0000:0000:ffff:7f00:0001'), { text: '127.0.0.1', family: 'ipv4' });
    assert.equal(limitKey(parseAddress('2001:0db8:0000:0000:0001:0000:0000:0001') as never), '2001:db8:0:0::/64');
    assert.equal(limitKey(parseAddress('::1') as never), '0:0:0:0::/64');
    assert.equal(parseAddress('not-an-ip'), null);
    const r = new ClientAddressResolver('127.0.0.1');
    assert.equal(r.resolve('127.0.0.1', 'garbage, 203.0.113.1')?.text, '203.0.113.1');
    assert.equal(r.resolve('127.0.0.1', '203.0.113.1, garbage')?.text, '127.0.0.1', 'an unparsable hop stops the walk at the last real address');
  });
});
