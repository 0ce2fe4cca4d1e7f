import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { CommandError, GatewayClient } from '../src/client/gateway-client';
import type { PresenceEntry } from '../src/protocol/codec';
import type { Gateway } from '../src/server/gateway';
import { BrokerServer, eventually, startNode } from './helpers/brokers';
import { startGateway, SINGLE_THREAD_ONLY } from './helpers/gateway';

const SECRET = 'presence-secret';
const RULES = ['--topics', JSON.stringify([{ match: 'chat.*', presence: true, maxPresence: 3 }, { match: 'room.*', presence: true }])];

const token = (sub: string, claims: Record<string, unknown> = {}) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).sign(new TextEncoder().encode(SECRET));

const getJson = async (url: string) => {
  const r = await fetch(url);
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
};

const byClient = (a: PresenceEntry, b: PresenceEntry) => (a.client < b.client ? -1 : 1);

describe('presence (memory broker)', () => {
  let g: Awaited<ReturnType<typeof startGateway>>;
  before(async () => (g = await startGateway(['--jwt-secret', SECRET, ...RULES])));
  after(() => g.stop());

  it('lists each subscription with client, user and info; stats count clients and distinct users', async () => {
    const alice1 = await GatewayClient.connect(g.ws, { token: await token('alice', { info: { name: 'Alice' } }) });
    const alice2 = await GatewayClient.connect(g.ws, { token: await token('alice', { info: { name: 'Alice' } }) });
    const bob = await GatewayClient.connect(g.ws, { token: await token('bob', { info: 'not an object' }) });
    for (const c of [alice1, alice2, bob]) await c.sub('chat.lobby');
    const r = await bob.command({ op: 'presence', topic: 'chat.lobby' });
    const entries = [...(r.presence ?? [])].sort(byClient);
    assert.equal(entries.length, 3);
    assert.deepEqual(entries.map((e) => e.user).sort(), ['alice', 'alice', 'bob']);
    assert.deepEqual(entries.find((e) => e.user === 'alice')?.info, { name: 'Alice' });
    assert.equal(entries.find((e) => e.user === 'bob')?.info, undefined, 'info that is not an object is left out');
    assert.equal(new Set(entries.map((e) => e.client)).size, 3, 'client ids are unique');
    const s = await alice1.command({ op: 'presence_stats', topic: 'chat.lobby' });
    assert.deepEqual({ clients: s.clients, users: s.users, unlisted: s.unlisted }, { clients: 3, users: 2, unlisted: 0 });
    await alice2.unsub('chat.lobby');
    await bob.close();
    const after = await alice1.command({ op: 'presence_stats', topic: 'chat.lobby' });
    assert.deepEqual({ clients: after.clients, users: after.users }, { clients: 1, users: 1 });
    await Promise.all([alice1.close(), alice2.close()]);
  });

  it('past maxPresence members are served but not listed, and stats say so', { skip: SINGLE_THREAD_ONLY }, async () => {
    const clients = await Promise.all(Array.from({ length: 5 }, async (_, i) => GatewayClient.connect(g.ws, { token: await token(`u${i}`), topics: ['chat.full'] })));
    const got: unknown[] = [];
    (clients[4] as GatewayClient).onDelivery = (d) => got.push(d.d);
    await eventually('subscribed', () => g.gw.presence.registry.total('chat.full') === 5);
    const r = await (clients[0] as GatewayClient).command({ op: 'presence', topic: 'chat.full' });
    assert.equal(r.presence?.length, 3);
    const s = await (clients[0] as GatewayClient).command({ op: 'presence_stats', topic: 'chat.full' });
    assert.deepEqual({ clients: s.clients, users: s.users, unlisted: s.unlisted }, { clients: 5, users: 3, unlisted: 2 });
    await fetch(`${g.http}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic: 'chat.full', data: 'hi' }) });
    await eventually('the unlisted member is served', () => got.length === 1);
    await Promise.all(clients.map((c) => c.close()));
  });

  it('forbidden without the right to subscribe; presence_disabled on topics without presence', async () => {
    const c = await GatewayClient.connect(g.ws, { token: await token('eve', { subscribe: ['room.*', 'news'] }) });
    await assert.rejects(c.command({ op: 'presence', topic: 'chat.lobby' }), (e: unknown) => e instanceof CommandError && e.code === 'forbidden');
    await assert.rejects(c.command({ op: 'presence_stats', topic: 'news' }), (e: unknown) => e instanceof CommandError && e.code === 'presence_disabled');
    assert.deepEqual((await c.command({ op: 'presence', topic: 'room.1' })).presence, []);
    await c.close();
  });

  it('over HTTP: GET /topics/<topic>/presence and /presence/stats', { skip: SINGLE_THREAD_ONLY }, async () => {
    const c = await GatewayClient.connect(g.ws, { token: await token('carol'), topics: ['room.a/b'] });
    await eventually('subscribed', () => g.gw.presence.registry.total('room.a/b') === 1);
    const list = await getJson(`${g.http}/topics/room.a/b/presence`);
    assert.equal(list.status, 200);
    assert.deepEqual((list.body.presence as PresenceEntry[]).map((e) => e.user), ['carol']);
    assert.deepEqual((await getJson(`${g.http}/topics/room.a%2Fb/presence/stats`)).body, { clients: 1, users: 1, unlisted: 0 });
    assert.equal((await getJson(`${g.http}/topics/news/presence`)).status, 404);
    await c.close();
  });

  it('1,000 connections churning subscribe, unsubscribe and disconnect leave presence exact, then empty', { skip: SINGLE_THREAD_ONLY }, async () => {
    const t = await token('churn');
    const open = async () => {
      const ws = new WebSocket(`${g.ws}?token=${t}&topics=room.churn`);
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      return ws;
    };
    const sockets: WebSocket[] = [];
    for (let i = 0; i < 1000; i += 50) sockets.push(...(await Promise.all(Array.from({ length: 50 }, open))));
    await eventually('1000 present', () => g.gw.presence.registry.total('room.churn') === 1000, 20_000);
    // A third unsubscribe, a third disconnect, a third resubscribe after unsubscribing.
    sockets.forEach((ws, i) => {
      if (i % 3 === 0) ws.send(JSON.stringify({ op: 'unsub', topic: 'room.churn' }));
      else if (i % 3 === 1) ws.terminate();
      else ws.send(JSON.stringify({ op: 'unsub', topic: 'room.churn' }) + '');
    });
    sockets.forEach((ws, i) => i % 3 === 2 && ws.send(JSON.stringify({ op: 'sub', topic: 'room.churn' })));
    const expected = sockets.filter((_, i) => i % 3 === 2).length;
    await eventually('exact after churn', () => g.gw.presence.registry.total('room.churn') === expected, 20_000);
    const c = await GatewayClient.connect(g.ws, { token: t });
    assert.equal((await c.command({ op: 'presence_stats', topic: 'room.churn' })).clients, expected);
    for (const ws of sockets) ws.terminate();
    await eventually('empty', () => g.gw.presence.registry.members === 0, 20_000);
    assert.equal((await c.command({ op: 'presence_stats', topic: 'room.churn' })).clients, 0);
    await c.close();
  });
});

for (const kind of ['redis', 'nats'] as const) {
  describe(`presence across two nodes (${kind})`, { timeout: 40_000 }, () => {
    let broker: BrokerServer;
    const nodes: { gateway: Gateway; url: string; port: number }[] = [];
    before(async () => {
      broker = await BrokerServer.start(kind);
      for (let i = 0; i < 2; i++) nodes.push(await startNode(broker.url, ['--jwt-secret', SECRET, '--node-ttl', '2000', ...RULES]));
      await eventually('brokers up', () => nodes.every((n) => n.gateway.broker.ready()));
      await eventually('nodes know each other', () => nodes.every((n) => n.gateway.bus.nodes === 2));
    });
    after(async () => {
      await Promise.all(nodes.map((n) => n.gateway.close()));
      await broker.stop();
    });
    const node = (i: number) => nodes[i] as { gateway: Gateway; url: string; port: number };

    it('lists and stats are equal on both nodes; a node gone takes its members within the node TTL', async () => {
      const onA = await GatewayClient.connect(node(0).url, { token: await token('ann'), topics: ['room.x'] });
      const onB1 = await GatewayClient.connect(node(1).url, { token: await token('ben', { info: { n: 1 } }), topics: ['room.x'] });
      const onB2 = await GatewayClient.connect(node(1).url, { token: await token('ben'), topics: ['room.x'] });
      await eventually('subscribed', () => node(0).gateway.presence.registry.total('room.x') === 1 && node(1).gateway.presence.registry.total('room.x') === 2);
      const listA = [...((await onA.command({ op: 'presence', topic: 'room.x' })).presence ?? [])].sort(byClient);
      const listB = [...((await onB1.command({ op: 'presence', topic: 'room.x' })).presence ?? [])].sort(byClient);
      assert.equal(listA.length, 3);
      assert.deepEqual(listA, listB);
      const http = (i: number) => `http://127.0.0.1:${node(i).port}/topics/room.x/presence/stats`;
      assert.deepEqual((await getJson(http(0))).body, { clients: 3, users: 2, unlisted: 0 });
      assert.deepEqual((await getJson(http(1))).body, { clients: 3, users: 2, unlisted: 0 });

      const stoppedAt = Date.now();
      await node(1).gateway.close();
      await eventually('B forgotten', () => node(0).gateway.bus.nodes === 1, 10_000);
      assert.ok(Date.now() - stoppedAt < 2000 + 1500, 'within the node TTL (plus one heartbeat period)');
      assert.deepEqual((await getJson(http(0))).body, { clients: 1, users: 1, unlisted: 0 });
      await Promise.all([onA.close(), onB1.close(), onB2.close()]);
    });
  });
}
