import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { GatewayClient } from '../src/client/gateway-client';
import { AppBackend, json } from './helpers/app-backend';
import { RawClient, type TestGateway, metric, sleep, startGateway, waitFor, SINGLE_THREAD_ONLY } from './helpers/gateway';

interface Asked {
  client: string;
  user: string;
  topic: string;
  info?: unknown;
  data?: unknown;
}

describe('subscribe and publish proxies', () => {
  let app: AppBackend;
  let g: TestGateway;
  before(async () => {
    app = await AppBackend.start();
    app.on('/connect', (r, res) => {
      const user = (r.body as { query: Record<string, string> }).query.user ?? 'anon';
      json(res, 200, { user, info: { role: 'member' } });
    });
    g = await startGateway([
      '--connect-proxy-url', `${app.url}/connect`,
      '--subscribe-proxy-url', `${app.url}/subscribe`,
      '--publish-proxy-url', `${app.url}/publish`,
      '--topics', JSON.stringify([{ match: 'private.*', subscribeProxy: true }, { match: 'vip', subscribeProxy: true }, { match: 'chat.*', publishProxy: true }]),
      '--proxy-timeout', '300', '--client-publish',
    ]);
  });
  after(async () => {
    await g.stop();
    await app.stop();
  });

  it('subscribe: allows, denies with the reason, fails as unavailable; other topics are not asked', { skip: SINGLE_THREAD_ONLY }, async () => {
    app.on('/subscribe', (r, res) => {
      const { user, topic } = r.body as Asked;
      if (topic === 'private.broken') return json(res, 500, {});
      if (topic === 'private.slow') return void sleep(600).then(() => json(res, 200, { allow: true }));
      if (topic === 'private.weird') return json(res, 200, { ok: 'yes' });
      json(res, 200, user === 'ann' ? { allow: true } : { allow: false, reason: `${topic} is Ann's` });
    });
    const ann = await GatewayClient.connect(`${g.ws}?user=ann`);
    const bob = await GatewayClient.connect(`${g.ws}?user=bob`);
    const asked = app.at('/subscribe').length;
    await ann.sub('private.ann');
    const body = app.at('/subscribe').at(-1)?.body as Asked;
    assert.equal(body.user, 'ann');
    assert.equal(body.topic, 'private.ann');
    assert.deepEqual(body.info, { role: 'member' });
    assert.match(body.client, /^[\w-]+\.\d+$/);
    await assert.rejects(bob.sub('private.ann'), { code: 'forbidden', message: /private\.ann is Ann's/ });
    await assert.rejects(bob.sub('private.broken'), { code: 'unavailable' });
    await assert.rejects(bob.sub('private.slow'), { code: 'unavailable', message: /no answer within 300 ms/ });
    await assert.rejects(bob.sub('private.weird'), { code: 'unavailable' });
    await bob.sub('news');
    assert.equal(app.at('/subscribe').length, asked + 5, 'news is not a proxied topic');
    // Denied and failed subs leave nothing behind; the allowed one delivers.
    assert.equal(g.gw.hub.get('private.ann')?.subscribers, 1);
    const got: unknown[] = [];
    ann.onDelivery = (d) => got.push(d.d);
    await fetch(`${g.http}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic: 'private.ann', data: 'secret' }) });
    await waitFor(() => got.length === 1);
    assert.equal(await metric(g.http, 'wsgate_proxy_calls_total{kind="subscribe",result="denied"}'), 1);
    assert.equal(await metric(g.http, 'wsgate_proxy_calls_total{kind="subscribe",result="timeout"}'), 1);
    await ann.close();
    await bob.close();
  });

  it('subscribe: an unsub while the application decides leaves no subscription', { skip: SINGLE_THREAD_ONLY }, async () => {
    const held: ServerResponse[] = [];
    app.on('/subscribe', (_r, res) => void held.push(res));
    const c = await RawClient.open(`${g.ws}?user=ann`);
    c.ws.send(JSON.stringify({ op: 'sub', topic: 'vip', id: 1 }));
    await waitFor(() => held.length === 1);
    c.ws.send(JSON.stringify({ op: 'unsub', topic: 'vip', id: 2 }));
    await c.received(1);
    json(held[0] as ServerResponse, 200, { allow: true });
    await sleep(100);
    assert.deepEqual(c.json(), [{ op: 'ok', id: 2 }], 'the stale sub answer is dropped');
    assert.equal(g.gw.hub.get('vip')?.subscribers ?? 0, 0);
    c.close();
  });

  it('publish: passes, replaces the data, denies, fails as unavailable', { skip: SINGLE_THREAD_ONLY }, async () => {
    app.on('/publish', (r, res) => {
      const { data, user } = r.body as Asked;
      if (data === 'spam') return json(res, 200, { allow: false, reason: 'no spam' });
      if (data === 'crash') return json(res, 503, {});
      if (data === 'shout') return json(res, 200, { allow: true, data: { text: 'SHOUT', by: user } });
      json(res, 200, { allow: true });
    });
    const sub = await GatewayClient.connect(g.ws, { topics: ['chat.room'] });
    const got: unknown[] = [];
    sub.onDelivery = (d) => got.push(d.d);
    await waitFor(() => g.gw.hub.get('chat.room')?.subscribers === 1);
    const pub = await GatewayClient.connect(`${g.ws}?user=cat`);
    assert.equal((await pub.pub('chat.room', 'hello')).seq, 1);
    await pub.pub('chat.room', 'shout');
    await assert.rejects(pub.pub('chat.room', 'spam'), { code: 'forbidden', message: /no spam/ });
    await assert.rejects(pub.pub('chat.room', 'crash'), { code: 'unavailable' });
    await waitFor(() => got.length === 2);
    assert.deepEqual(got, ['hello', { text: 'SHOUT', by: 'cat' }]);
    const asked = app.at('/publish').at(-1)?.body as Asked;
    assert.deepEqual(Object.keys(asked).sort(), ['client', 'data', 'topic', 'user']);
    await pub.close();
    await sub.close();
  });

  it("publish: one connection's publishes keep their order across proxied and plain topics", { skip: SINGLE_THREAD_ONLY }, async () => {
    // The application answers after random delays; a later publish never overtakes an earlier one.
    app.on('/publish', (_r, res) => void sleep(Math.random() * 20).then(() => json(res, 200, { allow: true })));
    const sub = await GatewayClient.connect(g.ws, { topics: ['chat.order', 'plain'] });
    const got: number[] = [];
    sub.onDelivery = (d) => got.push(d.d as number);
    await waitFor(() => g.gw.hub.get('plain')?.subscribers === 1 && g.gw.hub.get('chat.order')?.subscribers === 1);
    const pub = await GatewayClient.connect(g.ws);
    const acks = Array.from({ length: 40 }, (_, i) => pub.pub(i % 3 === 0 ? 'plain' : 'chat.order', i));
    await Promise.all(acks);
    await waitFor(() => got.length === 40);
    assert.deepEqual(got, Array.from({ length: 40 }, (_, i) => i));
    await pub.close();
    await sub.close();
  });

  it('publish: at most 64 wait per connection; more are answered unavailable', async () => {
    const held: ServerResponse[] = [];
    app.on('/publish', (_r, res) => void held.push(res));
    const c = await RawClient.open(g.ws);
    for (let i = 1; i <= 70; i++) c.ws.send(JSON.stringify({ op: 'pub', topic: 'chat.flood', data: i, id: i }));
    await c.received(5);
    const refused = c.json();
    assert.equal(refused.length, 5, 'one in flight plus 64 waiting');
    assert.ok(refused.every((m) => m.code === 'unavailable' && /too many publishes waiting/.test(String(m.reason))));
    for (let i = 0; i < 65; i++) {
      await waitFor(() => held.length > i, 2000);
      json(held[i] as ServerResponse, 200, { allow: true });
    }
    await c.received(70);
    assert.equal(c.json().filter((m) => m.op === 'ok').length, 65);
    c.close();
  });
});
