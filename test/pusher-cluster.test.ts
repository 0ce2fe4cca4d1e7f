import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type PusherJS from 'pusher-js';
import type { Gateway } from '../src/server/gateway';
import { BrokerServer, eventually, sleep, startNode } from './helpers/brokers';
import { APP, collect, connectionState, pusherClient, serverSdk, subscribed } from './helpers/pusher-clients';

/** Pusher clients on two gateway nodes joined by a real broker. */
for (const kind of ['redis', 'nats'] as const) {
  describe(`Pusher across two nodes via ${kind}`, { timeout: 60_000 }, () => {
    let broker: BrokerServer;
    const nodes: { gateway: Gateway; port: number }[] = [];
    const clients: PusherJS[] = [];
    const client = (node: number, opts: Parameters<typeof pusherClient>[1] = {}) => {
      const c = pusherClient((nodes[node] as { port: number }).port, opts);
      clients.push(c);
      return c;
    };

    before(async () => {
      broker = await BrokerServer.start(kind);
      for (let i = 0; i < 2; i++) nodes.push(await startNode(broker.url, ['--pusher-apps', `${APP.appId}:${APP.key}:${APP.secret}`, '--pusher-client-events']));
      await eventually('brokers up', () => nodes.every((n) => n.gateway.broker.ready()));
    });

    after(async () => {
      for (const c of clients) c.disconnect();
      await Promise.all(nodes.map((n) => n.gateway.close()));
      await broker.stop();
    });

    it('an event triggered on one node reaches pusher-js clients on both, once each', async () => {
      const [a, b] = [client(0), client(1)];
      const [ca, cb] = [a.subscribe('news'), b.subscribe('news')];
      await Promise.all([subscribed(ca), subscribed(cb)]);
      await sleep(200); // the second node's broker interest
      const [atA, atB] = [collect(ca, 'story'), collect(cb, 'story')];
      for (let i = 0; i < 5; i++) await serverSdk((nodes[0] as { port: number }).port).trigger('news', 'story', { i });
      await eventually('five stories on both nodes', () => atA.length === 5 && atB.length === 5, 5000);
      assert.deepEqual(atB, [0, 1, 2, 3, 4].map((i) => ({ i })), 'in order on the other node');
      await sleep(200);
      assert.equal(atA.length + atB.length, 10, 'no duplicates');
    });

    it('socket_id exclusion holds when the excluded socket is on the other node than the one triggered', async () => {
      const [a0, b1, c1] = [client(0), client(1), client(1)];
      const chans = [a0, b1, c1].map((c) => c.subscribe('feed'));
      await Promise.all([...chans.map(subscribed), connectionState(b1, 'connected')]);
      await sleep(200);
      const got = chans.map((ch) => collect(ch, 'update'));
      await serverSdk((nodes[0] as { port: number }).port).trigger('feed', 'update', 'x', { socket_id: b1.connection.socket_id });
      await eventually('the two others', () => (got[0] as unknown[]).length === 1 && (got[2] as unknown[]).length === 1, 5000);
      await sleep(300);
      assert.equal((got[1] as unknown[]).length, 0, 'the excluded socket on node 1 got nothing');
    });

    it('presence spans nodes: one member list, member_added once per user, member_removed after their last connection anywhere', async () => {
      await eventually('nodes know each other', () => nodes.every((n) => n.gateway.bus.nodes === 2), 10_000);
      const watcher = client(0, { member: { user_id: 'watcher' } });
      const room = watcher.subscribe('presence-span');
      const added = collect(room, 'pusher:member_added');
      const removed = collect(room, 'pusher:member_removed');
      await subscribed(room);
      const ann1 = client(1, { member: { user_id: 'ann', user_info: { n: 1 } } });
      const first = (await subscribed(ann1.subscribe('presence-span'))) as { count: number; members: Record<string, unknown> };
      assert.equal(first.count, 2, 'the member on the other node is listed');
      assert.deepEqual(Object.keys(first.members).sort(), ['ann', 'watcher']);
      await eventually('ann added on node 0', () => added.length === 1, 5000);
      const ann2 = client(0, { member: { user_id: 'ann', user_info: { n: 1 } } });
      await subscribed(ann2.subscribe('presence-span'));
      ann1.disconnect();
      await sleep(500);
      assert.equal(added.length, 1, 'ann added once for connections on two nodes');
      assert.equal(removed.length, 0, 'ann still connected on node 0');
      ann2.disconnect();
      await eventually('ann removed after the last connection', () => removed.length === 1, 5000);
      assert.deepEqual(removed[0], { id: 'ann', info: { n: 1 } });
    });

    it('client events cross nodes and are not echoed to the sender', async () => {
      const [s0, r1] = [client(0), client(1)];
      const [cs, cr] = [s0.subscribe('private-room'), r1.subscribe('private-room')];
      await Promise.all([subscribed(cs), subscribed(cr)]);
      await sleep(200);
      const [atS, atR] = [collect(cs, 'client-ping'), collect(cr, 'client-ping')];
      cs.trigger('client-ping', { from: 0 });
      await eventually('client event on the other node', () => atR.length === 1, 5000);
      await sleep(300);
      assert.equal(atS.length, 0);
    });
  });
}
