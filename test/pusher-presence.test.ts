import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type PusherJS from 'pusher-js';
import { type Delivery, GatewayClient } from '../src/client/gateway-client';
import type { Reply } from '../src/protocol/codec';
import type { Gateway } from '../src/server/gateway';
import { AppBackend, json, type Received } from './helpers/app-backend';
import { BrokerServer, eventually, sleep, startNode } from './helpers/brokers';
import { type TestGateway, spawnGateway, startGateway } from './helpers/gateway';
import { APP, collect, pusherClient, serverSdk, subscribed } from './helpers/pusher-clients';

const APPS = ['--pusher-apps', `${APP.appId}:${APP.key}:${APP.secret}`];

type Notice = { op: string; t: string; p: { client: string; user: string; info?: unknown } };

/** Pusher presence is session presence: its member events are join/leave notices, not publishes. */
describe('Pusher presence on session presence (one node)', { timeout: 30_000 }, () => {
  let g: TestGateway;
  const clients: PusherJS[] = [];
  const client = (member: { user_id: string; user_info?: Record<string, unknown> }) => {
    const c = pusherClient(g.port, { member });
    clients.push(c);
    return c;
  };

  before(async () => {
    g = await startGateway([...APPS, '--pusher-max-presence-members', '2']);
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    await g.stop();
  });

  it('member events stay outside the channel sequence: wsgate sees join/leave notices, history and the cache keep only events', async () => {
    const ws = await GatewayClient.connect(`ws://127.0.0.1:${g.port}/ws`);
    const notices: Notice[] = [];
    const deliveries: Delivery[] = [];
    ws.onNotice = (r: Reply) => {
      const n = r as unknown as Notice;
      if (n.op === 'join' || n.op === 'leave') notices.push(n);
    };
    ws.onDelivery = (d) => deliveries.push(d);
    await ws.sub('presence-cache-seq');
    const ann = client({ user_id: 'ann', user_info: { name: 'Ann' } });
    const room = ann.subscribe('presence-cache-seq');
    const misses = collect(room, 'pusher:cache_miss');
    await subscribed(room);
    await eventually('ann joined, seen by the wsgate subscriber', () => notices.length === 1, 5000);
    assert.deepEqual([notices[0]?.op, notices[0]?.t, notices[0]?.p.user, notices[0]?.p.info], ['join', 'presence-cache-seq', 'ann', { name: 'Ann' }]);
    await eventually('cache miss for ann', () => misses.length === 1, 5000);

    // Bob arrives after ann's member_added: the cache holds no member event, so he misses too.
    const bob = client({ user_id: 'bob' });
    const bobRoom = bob.subscribe('presence-cache-seq');
    const bobMisses = collect(bobRoom, 'pusher:cache_miss');
    await subscribed(bobRoom);
    await eventually('cache miss for bob', () => bobMisses.length === 1, 5000);

    await serverSdk(g.port).trigger('presence-cache-seq', 'score', { v: 1 });
    await eventually('the event reached the wsgate subscriber', () => deliveries.length === 1, 5000);
    assert.equal(deliveries[0]?.s, 1, 'member events took no sequence number');
    const history = (await ws.command({ op: 'history', topic: 'presence-cache-seq', limit: 10 })) as unknown as { messages: { s: number; d: unknown }[] };
    assert.deepEqual(
      history.messages.map((m) => m.s),
      [1],
      'history holds the event only',
    );
    bob.disconnect();
    await eventually('bob left', () => notices.some((n) => n.op === 'leave' && n.p.user === 'bob'), 5000);
    await ws.close();
  });

  it('at most --pusher-max-presence-members users per channel; more connections of a member are fine', async () => {
    const [a, b] = [client({ user_id: 'a' }), client({ user_id: 'b' })];
    await subscribed(a.subscribe('presence-full'));
    await subscribed(b.subscribe('presence-full'));
    const a2 = client({ user_id: 'a' });
    const again = (await subscribed(a2.subscribe('presence-full'))) as { count: number };
    assert.equal(again.count, 2);
    const c = client({ user_id: 'c' });
    const refused = new Promise<unknown>((resolve) => c.subscribe('presence-full').bind('pusher:subscription_error', resolve));
    const error = (await refused) as { type: string; status: number };
    assert.equal(error.type, 'LimitReached');
    assert.equal(error.status, 400);
    b.disconnect();
    await sleep(200);
    const c2 = client({ user_id: 'c' });
    const ok = (await subscribed(c2.subscribe('presence-full'))) as { count: number };
    assert.equal(ok.count, 2, 'room again once b left');
  });
});

interface PusherHookEvent {
  name: string;
  channel: string;
  user_id?: string;
}

const NODE_TTL_MS = 1000;
const DELAY_MS = 300;

/**
 * Pusher webhooks and member events across a cluster: member_added/removed and channel_occupied/vacated
 * once per cluster, and a dead node's users removed by the survivors.
 */
for (const kind of ['redis', 'nats'] as const) {
  describe(`Pusher presence and webhooks across nodes via ${kind}`, { timeout: 60_000 }, () => {
    let broker: BrokerServer;
    let app: AppBackend;
    const nodes: { gateway: Gateway; port: number }[] = [];
    const clients: PusherJS[] = [];
    const flags = () => [...APPS, '--pusher-webhook-url', `${app.url}/pusher`, '--webhook-delay', String(DELAY_MS), '--node-ttl', String(NODE_TTL_MS)];
    const client = (port: number, member: { user_id: string }) => {
      const c = pusherClient(port, { member });
      clients.push(c);
      return c;
    };
    const hooks = (name: string, channel: string): PusherHookEvent[] =>
      app
        .at('/pusher')
        .flatMap((r: Received) => {
          assert.equal(r.headers['x-pusher-signature'], createHmac('sha256', APP.secret).update(r.raw).digest('hex'), 'signed with the app secret');
          return (r.body as { events: PusherHookEvent[] }).events;
        })
        .filter((e) => e.name === name && e.channel === channel);

    before(async () => {
      broker = await BrokerServer.start(kind, null, null, true);
      app = await AppBackend.start();
      app.on('/pusher', (_r, res) => json(res, 200, {}));
      for (let i = 0; i < 2; i++) nodes.push(await startNode(broker.url, flags()));
      await eventually('brokers up', () => nodes.every((n) => n.gateway.broker.ready()));
      await eventually('nodes know each other', () => nodes.every((n) => n.gateway.bus.nodes === 2));
    });

    after(async () => {
      for (const c of clients) c.disconnect();
      await Promise.all(nodes.map((n) => n.gateway.close()));
      await app.stop();
      await broker.stop();
    });

    it('member_added/removed and channel_occupied/vacated are sent once by the cluster', async () => {
      const [p0, p1] = nodes.map((n) => n.port) as [number, number];
      const ann0 = client(p0, { user_id: 'ann' });
      await subscribed(ann0.subscribe('presence-once'));
      const ann1 = client(p1, { user_id: 'ann' });
      await subscribed(ann1.subscribe('presence-once'));
      const bob1 = client(p1, { user_id: 'bob' });
      await subscribed(bob1.subscribe('presence-once'));
      await eventually('bob added', () => hooks('member_added', 'presence-once').length === 2, 5000);
      ann0.disconnect();
      await sleep(300);
      assert.equal(hooks('member_removed', 'presence-once').length, 0, 'ann is still on node 1');
      ann1.disconnect();
      bob1.disconnect();
      await eventually('vacated', () => hooks('channel_vacated', 'presence-once').length === 1, DELAY_MS + 5000);
      await sleep(DELAY_MS + 500);
      assert.deepEqual(hooks('member_added', 'presence-once').map((e) => e.user_id), ['ann', 'bob']);
      assert.deepEqual(hooks('member_removed', 'presence-once').map((e) => e.user_id).sort(), ['ann', 'bob']);
      assert.equal(hooks('channel_occupied', 'presence-once').length, 1, 'occupied once for two nodes');
      assert.equal(hooks('channel_vacated', 'presence-once').length, 1);
    });

    it('a node killed without goodbye: survivors send member_removed to their subscribers, the webhook once', async () => {
      const dying = await spawnGateway(['--broker', broker.url, ...flags()]);
      try {
        await eventually('three nodes', () => nodes.every((n) => n.gateway.bus.nodes === 3), 10_000);
        const watchers = nodes.map((n, i) => client(n.port, { user_id: `watcher${i}` }));
        const rooms = watchers.map((w) => w.subscribe('presence-dies'));
        const removed = rooms.map((r) => collect(r, 'pusher:member_removed'));
        await Promise.all(rooms.map(subscribed));
        const doomed = client(dying.port, { user_id: 'doomed' });
        await subscribed(doomed.subscribe('presence-dies'));
        await eventually('doomed added', () => hooks('member_added', 'presence-dies').some((e) => e.user_id === 'doomed'), 5000);
        // The node dies with the member connected: only its missing heartbeats tell the survivors.
        dying.child.kill('SIGKILL');
        await dying.exited;
        await eventually('removed on both survivors', () => removed.every((r) => r.length === 1), NODE_TTL_MS * 2 + 5000);
        assert.deepEqual(removed.map((r) => (r[0] as { id: string }).id), ['doomed', 'doomed']);
        await sleep(500);
        assert.equal(hooks('member_removed', 'presence-dies').filter((e) => e.user_id === 'doomed').length, 1, 'the webhook once');
      } finally {
        await dying.stop();
      }
    });
  });
}
