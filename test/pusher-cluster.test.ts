import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type PusherJS from 'pusher-js';
import type { Gateway } from '../src/server/gateway';
import { BrokerServer, eventually, sleep, startNode } from './helpers/brokers';
import { RawClient } from './helpers/gateway';
import { APP, collect, connectionState, pusherClient, sdkUserAuthentication, serverSdk, signedIn, subscribed, withUnrefCloseTimers } from './helpers/pusher-clients';

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

    const sdk = (node: number) => serverSdk((nodes[node] as { port: number }).port);
    /** A signed GET of the channel API on `node`, its JSON body. */
    const query = async (node: number, path: string, params: Record<string, string> = {}) => {
      const res = await sdk(node).get({ path, params });
      assert.equal(res.status, 200);
      return (await res.json()) as Record<string, unknown>;
    };

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

    it('channel queries count over both nodes: occupied, subscription_count (every door), distinct users', async () => {
      await eventually('nodes know each other', () => nodes.every((n) => n.gateway.bus.nodes === 2), 10_000);
      // count-me: one pusher-js subscriber on node 0, one pusher-js and one wsgate socket on node 1.
      const counted = [client(0).subscribe('count-me'), client(1).subscribe('count-me')];
      const wsgate = await RawClient.open(`ws://127.0.0.1:${(nodes[1] as { port: number }).port}/ws?topics=count-me`);
      // presence-q: u1 on both nodes, u2 on node 1 only.
      const members = [client(0, { member: { user_id: 'u1' } }), client(1, { member: { user_id: 'u1' } }), client(1, { member: { user_id: 'u2' } })];
      await Promise.all([...counted, ...members.map((m) => m.subscribe('presence-q'))].map(subscribed));
      await eventually('three subscribers of count-me', async () => (await query(0, '/channels/count-me', { info: 'subscription_count' })).subscription_count === 3, 5000);
      const only = client(1).subscribe('only-on-one');
      await subscribed(only);
      for (const node of [0, 1]) {
        assert.deepEqual(await query(node, '/channels/count-me', { info: 'subscription_count' }), { occupied: true, subscription_count: 3 }, `node ${node}`);
        assert.deepEqual(await query(node, '/channels/only-on-one'), { occupied: true });
        assert.deepEqual(await query(node, '/channels/nobody-here', { info: 'subscription_count' }), { occupied: false, subscription_count: 0 });
        assert.deepEqual(await query(node, '/channels/presence-q', { info: 'user_count,subscription_count' }), { occupied: true, user_count: 2, subscription_count: 3 });
        assert.deepEqual(await query(node, '/channels', { filter_by_prefix: 'presence-q', info: 'user_count' }), { channels: { 'presence-q': { user_count: 2 } } });
        const listed = (await query(node, '/channels')).channels as Record<string, unknown>;
        for (const c of ['count-me', 'only-on-one', 'presence-q']) assert.ok(c in listed, `${c} listed by node ${node}`);
        const users = ((await query(node, '/channels/presence-q/users')).users as { id: string }[]).map((u) => u.id).sort();
        assert.deepEqual(users, ['u1', 'u2']);
      }
      const triggered = await sdk(0).trigger('count-me', 'e', {}, { info: 'subscription_count' });
      assert.deepEqual(await triggered.json(), { channels: { 'count-me': { subscription_count: 3 } } });
      const batch = await sdk(1).triggerBatch([{ channel: 'presence-q', name: 'e', data: '1', info: 'user_count' }]);
      assert.deepEqual(await batch.json(), { batch: [{ user_count: 2 }] });
      // A question from another node is checked before it is answered: no answer to a malformed or oversized one.
      const bus = (nodes[0] as { gateway: Gateway }).gateway.bus;
      assert.deepEqual(await bus.gather('pusher_users', 'presence-q'), [null, null]);
      assert.deepEqual(await bus.gather('pusher_users', Array.from({ length: 21 }, () => 'presence-q')), [null, null]);
      assert.deepEqual(await bus.gather('topic_counts', Array.from({ length: 101 }, () => 'count-me')), [null, null]);
      const perNode = (await bus.gather('pusher_users', ['presence-q'])) as string[][][];
      assert.deepEqual(perNode.map(([ids]) => [...(ids as string[])].sort()), [['u1'], ['u1', 'u2']], 'each node answers with its own users');
      members[0]?.disconnect();
      await eventually('u1 still counted once from node 1', async () => {
        const q = await query(0, '/channels/presence-q', { info: 'user_count,subscription_count' });
        return q.user_count === 2 && q.subscription_count === 2;
      }, 5000);
      wsgate.ws.close();
    });

    it('terminate_connections reaches a signed-in connection on the other node: pusher-js sees 4009', async () => {
      const [far, near, bystander] = [client(1, { extra: { userAuthentication: sdkUserAuthentication(sdk(1), 'mallory') } }), client(0, { extra: { userAuthentication: sdkUserAuthentication(sdk(0), 'mallory') } }), client(1, { extra: { userAuthentication: sdkUserAuthentication(sdk(1), 'trent') } })];
      await Promise.all([far, near, bystander].map(signedIn));
      const codes: unknown[][] = [[], []];
      [far, near].forEach((c, i) => c.connection.bind('error', (e: { type: string; data?: { code?: number } }) => e.type === 'PusherError' && codes[i]?.push(e.data?.code)));
      await withUnrefCloseTimers(async () => {
        assert.equal((await sdk(0).terminateUserConnections('mallory')).status, 200);
        await Promise.all([connectionState(far, 'disconnected'), connectionState(near, 'disconnected')]);
      });
      assert.deepEqual(codes, [[4009], [4009]]);
      await sleep(100);
      assert.equal(bystander.connection.state, 'connected', 'another user stays');
    });

    it('sendToUser reaches the user\'s connections on both nodes, once each, and nobody else', async () => {
      const peggy = [client(0, { extra: { userAuthentication: sdkUserAuthentication(sdk(0), 'peggy') } }), client(1, { extra: { userAuthentication: sdkUserAuthentication(sdk(1), 'peggy') } })];
      const victor = client(1, { extra: { userAuthentication: sdkUserAuthentication(sdk(1), 'victor') } });
      await Promise.all([...peggy, victor].map(signedIn));
      await sleep(200); // the broker interest of the user's channel on each node
      const got = [...peggy, victor].map((c) => {
        const events: unknown[] = [];
        c.user.bind('note', (d: unknown) => events.push(d));
        return events;
      });
      for (let i = 0; i < 3; i++) assert.equal((await sdk(0).sendToUser('peggy', 'note', { i })).status, 200);
      await eventually('peggy on both nodes', () => got[0]?.length === 3 && got[1]?.length === 3, 5000);
      await sleep(300);
      assert.deepEqual(got, [[{ i: 0 }, { i: 1 }, { i: 2 }], [{ i: 0 }, { i: 1 }, { i: 2 }], []]);
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
