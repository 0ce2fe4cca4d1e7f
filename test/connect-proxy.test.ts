import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { GatewayClient } from '../src/client/gateway-client';
import { AppBackend, json } from './helpers/app-backend';
import { RawClient, type TestGateway, freePort, metric, sleep, startGateway, waitFor, SINGLE_THREAD_ONLY } from './helpers/gateway';

const SECRET = 'a-test-secret-of-enough-length-123';

interface Refusal {
  status: number;
  body: { code?: string; reason?: string };
}

/** The status and body of a refused upgrade; status 101 when accepted. */
function upgrade(url: string, headers: Record<string, string> = {}): Promise<Refusal> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => {
      ws.terminate();
      resolve({ status: 101, body: {} });
    });
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Refusal['body'] }));
    });
    ws.once('error', reject);
  });
}

describe('connect proxy', () => {
  let app: AppBackend;
  let g: TestGateway;
  before(async () => {
    app = await AppBackend.start();
    g = await startGateway(['--connect-proxy-url', `${app.url}/connect`, '--proxy-timeout', '300', '--client-publish', '--jwt-secret', SECRET, '--allowed-origins', 'http://app.test']);
  });
  after(async () => {
    await g.stop();
    await app.stop();
  });

  it('lets a connection in with the grants and server-side topics the application answers', { skip: SINGLE_THREAD_ONLY }, async () => {
    app.on('/connect', (r, res) => {
      const cookie = (r.body as { headers: Record<string, string> }).headers.cookie;
      if (cookie !== 'session=s1') return json(res, 401, { reason: 'no session' });
      json(res, 200, { user: 'u1', info: { name: 'Ann' }, subscribe: ['chat.*'], publish: ['chat.room1'], topics: ['user:u1'] });
    });
    const c = await RawClient.open(`${g.ws}?topics=chat.lobby&lang=en&token=`, 'wsgate.json', { cookie: 'session=s1', origin: 'http://app.test', 'user-agent': 'test-agent' });
    const sent = app.at('/connect').at(-1)?.body as Record<string, unknown>;
    assert.deepEqual(sent.headers, { cookie: 'session=s1', origin: 'http://app.test', 'user-agent': 'test-agent' });
    assert.deepEqual(sent.query, { topics: 'chat.lobby', lang: 'en' }, 'the query minus the token');
    assert.equal(sent.protocol, 'json');
    assert.match(String(sent.remote), /127\.0\.0\.1/);
    // The server-side topic and the query topic are both live once the gateway has subscribed them.
    await waitFor(() => g.gw.hub.get('user:u1')?.subscribers === 1 && g.gw.hub.get('chat.lobby')?.subscribers === 1, 2000, 'server-side subscriptions');
    await fetch(`${g.http}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic: 'user:u1', data: 'for you' }) });
    await c.received(1);
    assert.deepEqual(c.json()[0], { t: 'user:u1', s: 1, d: 'for you' });
    c.ws.send(JSON.stringify({ op: 'sub', topic: 'news', id: 1 }));
    c.ws.send(JSON.stringify({ op: 'pub', topic: 'chat.room2', data: 1, id: 2 }));
    c.ws.send(JSON.stringify({ op: 'pub', topic: 'chat.room1', data: 1, id: 3 }));
    await c.received(4);
    const replies = c.json().slice(1);
    assert.equal(replies[0]?.code, 'forbidden', 'subscribe grant from the application');
    assert.equal(replies[1]?.code, 'forbidden', 'publish grant from the application');
    assert.equal(replies[2]?.op, 'ok');
    c.close();
    assert.equal((await upgrade(`${g.ws}?topics=news`, { cookie: 'session=s1' })).status, 403, 'a query topic the grant does not allow');
  });

  it('refuses with 401/403 and the application reason', async () => {
    app.on('/connect', (r, res) => {
      const q = (r.body as { query: Record<string, string> }).query;
      json(res, q.who === 'banned' ? 403 : 401, q.who === 'silent' ? {} : { reason: `no entry for ${q.who}` });
    });
    const before = await metric(g.http, 'wsgate_proxy_calls_total{kind="connect",result="denied"}');
    assert.deepEqual(await upgrade(`${g.ws}?who=anon`), { status: 401, body: { code: 'unauthorized', reason: 'no entry for anon' } });
    assert.deepEqual(await upgrade(`${g.ws}?who=banned`), { status: 403, body: { code: 'forbidden', reason: 'no entry for banned' } });
    assert.deepEqual(await upgrade(`${g.ws}?who=silent`), { status: 401, body: { code: 'unauthorized', reason: 'refused by the application' } });
    assert.equal(await metric(g.http, 'wsgate_proxy_calls_total{kind="connect",result="denied"}'), before + 3);
  });

  it('answers 503 proxy_unavailable on timeout, 5xx, garbage, bad grants and non-200 answers, and counts them', async () => {
    const before = await metric(g.http, 'wsgate_connections_total{result="proxy_unavailable"}');
    const cases: [string, (res: import('node:http').ServerResponse) => void, string][] = [
      ['timeout', (res) => void sleep(800).then(() => json(res, 200, {})), 'timeout'],
      ['500', (res) => json(res, 500, { reason: 'db down' }), 'error'],
      ['garbage', (res) => res.writeHead(200).end('<html>not json'), 'error'],
      ['bad grants', (res) => json(res, 200, { user: 'u1', subscribe: 'chat.*' }), 'error'],
      ['bad topic', (res) => json(res, 200, { user: 'u1', topics: ['no spaces allowed'] }), 'error'],
      ['404', (res) => json(res, 404, {}), 'error'],
    ];
    for (const [name, answer, result] of cases) {
      app.on('/connect', (_r, res) => answer(res));
      const counted = await metric(g.http, `wsgate_proxy_calls_total{kind="connect",result="${result}"}`);
      const r = await upgrade(g.ws);
      assert.equal(r.status, 503, name);
      assert.equal(r.body.code, 'proxy_unavailable', name);
      assert.equal(await metric(g.http, `wsgate_proxy_calls_total{kind="connect",result="${result}"}`), counted + 1, name);
    }
    assert.equal(await metric(g.http, 'wsgate_connections_total{result="proxy_unavailable"}'), before + cases.length);
    assert.ok((await metric(g.http, 'wsgate_proxy_duration_seconds_count{kind="connect"}')) >= cases.length);
    assert.equal(await metric(g.http, 'wsgate_connections'), 0);
  });

  it('answers 503 when nothing listens at the proxy URL', async () => {
    const dead = await startGateway(['--connect-proxy-url', `http://127.0.0.1:${await freePort()}/connect`]);
    try {
      const r = await upgrade(dead.ws);
      assert.deepEqual([r.status, r.body.code], [503, 'proxy_unavailable']);
      assert.match(String(r.body.reason), /unreachable: ECONNREFUSED/);
      assert.equal(await metric(dead.http, 'wsgate_proxy_calls_total{kind="connect",result="error"}'), 1);
    } finally {
      await dead.stop();
    }
  });

  it('closes with 1008 at the expiresAt the application gave', async () => {
    app.on('/connect', (_r, res) => json(res, 200, { user: 'u2', expiresAt: Math.floor(Date.now() / 1000) + 1 }));
    const c = await RawClient.open(g.ws);
    assert.equal(await c.closed(4000), 1008, `${c.closeCode} ${c.error}`);
  });

  it('a presented JWT is verified instead of asking the application', async () => {
    let asked = 0;
    app.on('/connect', (_r, res) => {
      asked++;
      json(res, 401, { reason: 'no session' });
    });
    const token = await new SignJWT({ subscribe: ['news'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('jwt-user').setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
    assert.equal((await upgrade(`${g.ws}?topics=news`, { authorization: `Bearer ${token}` })).status, 101);
    assert.equal((await upgrade(`${g.ws}?token=forged`)).status, 401, 'a bad token is not rescued by the proxy');
    assert.equal(asked, 0);
    assert.equal((await upgrade(g.ws)).status, 401);
    assert.equal(asked, 1, 'no token: the application decides');
  });

  it('survives clients that leave while the application is thinking, leaking nothing', { skip: SINGLE_THREAD_ONLY }, async () => {
    const held: import('node:http').ServerResponse[] = [];
    app.on('/connect', (_r, res) => void held.push(res));
    const before = app.at('/connect').length;
    const clients = Array.from({ length: 20 }, () => new WebSocket(g.ws));
    for (const c of clients) c.on('error', () => {});
    await waitFor(() => app.at('/connect').length === before + 20, 3000, 'proxy calls');
    assert.equal(await metric(g.http, 'wsgate_pending_upgrades'), 20);
    for (const c of clients) c.terminate();
    await sleep(100);
    // Half answer after the client left, half never answer (the gateway's timeout ends them).
    for (const res of held.splice(0, 10)) json(res, 200, { user: 'gone', topics: ['user:gone'] });
    await waitFor(async () => (await metric(g.http, 'wsgate_pending_upgrades')) === 0, 3000, 'pending upgrades to settle');
    for (const res of held) res.destroy();
    assert.equal(await metric(g.http, 'wsgate_connections'), 0);
    assert.equal(g.gw.hub.get('user:gone')?.subscribers ?? 0, 0, 'no subscription for a client that left');
    // The node still serves.
    app.on('/connect', (_r, res) => json(res, 200, { user: 'u3' }));
    const c = await GatewayClient.connect(g.ws);
    await c.sub('news');
    await c.close();
  });
});
