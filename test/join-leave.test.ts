import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { type Delivery, GatewayClient } from '../src/client/gateway-client';
import type { Reply } from '../src/protocol/codec';
import type { Gateway } from '../src/server/gateway';
import { BrokerServer, eventually, sleep, startNode } from './helpers/brokers';
import { TEST_WORKERS, metric, startGateway } from './helpers/gateway';

const SECRET = 'jl-secret';
const RULES = [
  '--topics',
  JSON.stringify([
    { match: 'chat.*', joinLeave: true },
    { match: 'room.*', joinLeave: true, presence: true, presenceBy: 'user', presenceGrace: 400 },
  ]),
];

const token = (sub: string, claims: Record<string, unknown> = {}) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).sign(new TextEncoder().encode(SECRET));

type Notice = { op: string; t: string; p: { client: string; user: string; info?: unknown } };

/** A client that records join/leave notices (and deliveries). */
async function watcher(url: string, sub: string, codec: 'json' | 'msgpack' = 'json') {
  const c = await GatewayClient.connect(url, { codec, token: await token(sub) });
  const notices: Notice[] = [];
  const deliveries: Delivery[] = [];
  c.onNotice = (r: Reply) => {
    const n = r as unknown as Notice;
    if (n.op === 'join' || n.op === 'leave') notices.push(n);
  };
  c.onDelivery = (d) => deliveries.push(d);
  return { c, notices, deliveries };
}

const ops = (notices: Notice[]) => notices.map((n) => `${n.op}:${n.p.user}`);
const about = (user: string, notices: Notice[]) => ops(notices.filter((n) => n.p.user === user));
const NODE_TTL = 2000;

describe('join and leave (memory broker)', () => {
  let g: Awaited<ReturnType<typeof startGateway>>;
  before(async () => (g = await startGateway(['--jwt-secret', SECRET, '--client-publish', ...RULES])));
  after(() => g.stop());

  it('subscribers see others join and leave (unsubscribe, disconnect), not themselves; both codecs; s unaffected', async () => {
    const a = await watcher(g.ws, 'a');
    const m = await watcher(g.ws, 'm', 'msgpack');
    await a.c.sub('chat.x');
    await m.c.sub('chat.x');
    const b = await watcher(g.ws, 'b');
    await b.c.sub('chat.x');
    await a.c.pub('chat.x', 'hello');
    await b.c.unsub('chat.x');
    const c = await GatewayClient.connect(g.ws, { token: await token('c', { info: { color: 'red' } }), topics: ['chat.x'] });
    await eventually('c joined', () => a.notices.length === 4);
    await c.close();
    await eventually('c left', () => a.notices.length === 5 && m.notices.length === 4);
    assert.deepEqual(ops(a.notices), ['join:m', 'join:b', 'leave:b', 'join:c', 'leave:c']);
    assert.deepEqual(ops(m.notices), ['join:b', 'leave:b', 'join:c', 'leave:c']);
    assert.deepEqual(a.notices[3]?.p.info, { color: 'red' });
    assert.deepEqual(m.notices, a.notices.slice(1), 'msgpack subscribers get the same maps');
    assert.equal(b.notices.length, 0, 'b heard nothing about itself');
    assert.deepEqual(a.notices[0]?.t, 'chat.x');
    await a.c.pub('chat.x', 'again');
    await eventually('two deliveries', () => a.deliveries.length === 2);
    assert.deepEqual(a.deliveries.map((d) => d.s), [1, 2], 'join/leave take no sequence numbers');
    // Counted by each node that fanned a notice out: with workers, by each worker with subscribers.
    if (TEST_WORKERS === 1) {
      assert.equal(await metric(g.http, 'wsgate_join_leave_events_total{op="join"}'), 3);
      assert.equal(await metric(g.http, 'wsgate_join_leave_events_total{op="leave"}'), 2);
    }
    await Promise.all([a.c.close(), m.c.close(), b.c.close()]);
  });

  it('presenceBy "user": first connection joins, last departure leaves after the grace; a quick reconnect says nothing', async () => {
    const w = await watcher(g.ws, 'watcher');
    await w.c.sub('room.1');
    const t = await token('u1');
    const first = await GatewayClient.connect(g.ws, { token: t, topics: ['room.1'] });
    const second = await GatewayClient.connect(g.ws, { token: t, topics: ['room.1'] });
    await eventually('u1 joined', () => w.notices.length === 1);
    await first.close();
    await second.close();
    const again = await GatewayClient.connect(g.ws, { token: t, topics: ['room.1'] }); // within the grace
    await sleep(600);
    assert.deepEqual(ops(w.notices), ['join:u1'], 'no leave, no second join');
    await again.close();
    await eventually('u1 left after the grace', () => w.notices.length === 2, 3000);
    assert.deepEqual(ops(w.notices), ['join:u1', 'leave:u1']);
    await w.c.close();
  });
});

for (const kind of ['redis', 'nats'] as const) {
  describe(`join and leave across two nodes (${kind})`, { timeout: 30_000 }, () => {
    let broker: BrokerServer;
    const nodes: { gateway: Gateway; url: string }[] = [];
    before(async () => {
      broker = await BrokerServer.start(kind);
      for (let i = 0; i < 2; i++) nodes.push(await startNode(broker.url, ['--jwt-secret', SECRET, '--node-ttl', String(NODE_TTL), ...RULES]));
      await eventually('brokers up', () => nodes.every((n) => n.gateway.broker.ready()));
      await eventually('nodes know each other', () => nodes.every((n) => n.gateway.bus.nodes === 2));
    });
    after(async () => {
      await Promise.all(nodes.map((n) => n.gateway.close()));
      await broker.stop();
    });

    it('a join and leave on one node reach subscribers on the other', async () => {
      const onA = await watcher((nodes[0] as { url: string }).url, 'a');
      await onA.c.sub('chat.cross');
      const onB = await GatewayClient.connect((nodes[1] as { url: string }).url, { token: await token('b'), topics: ['chat.cross'] });
      await eventually('join seen on A', () => onA.notices.length === 1);
      await onB.close();
      await eventually('leave seen on A', () => onA.notices.length === 2);
      assert.deepEqual(ops(onA.notices), ['join:b', 'leave:b']);
      await onA.c.close();
    });

    it('presenceBy "user" holds cluster-wide: one join and one leave per node however many nodes the user uses; a node that dies leaves after the node TTL', async () => {
      const [a, b] = nodes as [{ gateway: Gateway; url: string }, { gateway: Gateway; url: string }];
      const wA = await watcher(a.url, 'wa');
      const wB = await watcher(b.url, 'wb');
      await wA.c.sub('room.c');
      await wB.c.sub('room.c');
      const t = await token('u1');
      const seen = (expected: string[]) => {
        assert.deepEqual(about('u1', wA.notices), expected, 'watcher on A');
        assert.deepEqual(about('u1', wB.notices), expected, 'watcher on B');
      };
      const both = (n: number) => about('u1', wA.notices).length === n && about('u1', wB.notices).length === n;

      // On both nodes at once: one join.
      const onA = await GatewayClient.connect(a.url, { token: t, topics: ['room.c'] });
      await eventually('join on both nodes', () => both(1));
      const onB = await GatewayClient.connect(b.url, { token: t, topics: ['room.c'] });
      await sleep(300);
      seen(['join:u1']);
      // Leaves A, still on B: nothing, even after the grace (400 ms).
      await onA.close();
      await sleep(800);
      seen(['join:u1']);
      // Leaves B: one leave after the grace.
      const left = Date.now();
      await onB.close();
      await eventually('leave on both nodes', () => both(2), 5000);
      assert.ok(Date.now() - left >= 350, 'not before the grace');
      await sleep(300);
      seen(['join:u1', 'leave:u1']);

      // Back on A, then moves to B within the grace: nothing.
      const againA = await GatewayClient.connect(a.url, { token: t, topics: ['room.c'] });
      await eventually('second join on both nodes', () => both(3));
      await againA.close();
      await GatewayClient.connect(b.url, { token: t, topics: ['room.c'] });
      await sleep(800);
      seen(['join:u1', 'leave:u1', 'join:u1']);

      // Gained on both nodes at the same instant (u2): still one join per node, and one leave.
      const t2 = await token('u2');
      const pair = await Promise.all([a.url, b.url].map((url) => GatewayClient.connect(url, { token: t2, topics: ['room.c'] })));
      await eventually('u2 joined on both nodes', () => about('u2', wA.notices).length === 1 && about('u2', wB.notices).length === 1);
      await sleep(300);
      await Promise.all(pair.map((c) => c.close()));
      await eventually('u2 left on both nodes', () => about('u2', wA.notices).length === 2 && about('u2', wB.notices).length === 2, 5000);
      await sleep(300);
      assert.deepEqual(about('u2', wA.notices), ['join:u2', 'leave:u2']);
      assert.deepEqual(about('u2', wB.notices), ['join:u2', 'leave:u2']);

      // B, holding u1's only connection, dies without a word: A's watcher hears one leave once B's heartbeats are missed.
      const killed = Date.now();
      await b.gateway.close();
      await sleep(600);
      assert.deepEqual(about('u1', wA.notices), ['join:u1', 'leave:u1', 'join:u1'], 'no leave before the node TTL');
      await eventually('leave after the node TTL', () => about('u1', wA.notices).length === 4, NODE_TTL * 3);
      // B's last heartbeat left up to one heartbeat period (a third of the TTL) before it died, so the
      // TTL rule fires from 2/3 of the TTL on; the grace (400 ms) would be far earlier.
      assert.ok(Date.now() - killed >= (NODE_TTL * 2) / 3 - 100, 'from the node TTL, not the grace');
      await sleep(300);
      assert.deepEqual(about('u1', wA.notices), ['join:u1', 'leave:u1', 'join:u1', 'leave:u1']);
      await wA.c.close();
    });

    it('presenceBy "user": a node that starts learns who the others hold', async () => {
      const a = nodes[0] as { gateway: Gateway; url: string };
      const t = await token('u3');
      const onA = await GatewayClient.connect(a.url, { token: t, topics: ['room.n'] });
      const c = await startNode(broker.url, ['--jwt-secret', SECRET, '--node-ttl', String(NODE_TTL), ...RULES]);
      nodes.push(c);
      await eventually('C knows A', () => c.gateway.bus.nodes >= 2);
      const wC = await watcher(c.url, 'wc');
      await wC.c.sub('room.n');
      const onC = await GatewayClient.connect(c.url, { token: t, topics: ['room.n'] });
      await sleep(300);
      assert.deepEqual(about('u3', wC.notices), [], 'u3 was already there: no join');
      await Promise.all([onA.close(), onC.close()]);
      await eventually('u3 left', () => about('u3', wC.notices).length === 1, 5000);
      await sleep(300);
      assert.deepEqual(about('u3', wC.notices), ['leave:u3']);
      await wC.c.close();
    });
  });
}
