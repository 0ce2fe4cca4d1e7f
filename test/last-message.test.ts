import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Delivery, GatewayClient } from '../src/client/gateway-client';
import type { Gateway } from '../src/server/gateway';
import { BrokerServer, eventually, sleep, startNode } from './helpers/brokers';
import { metric, startGateway } from './helpers/gateway';

const RULES = ['--topics', JSON.stringify([{ match: 'ticker.*', lastMessage: true }])];

const publish = (http: string, topic: string, data: unknown) =>
  fetch(`${http}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic, data }) }).then((r) => r.json());

/** Subscribes without since and collects what arrives within a short window after the ok. */
async function subscribeAndCollect(url: string, topic: string, codec: 'json' | 'msgpack' = 'json', since?: { seq: number; epoch: string }) {
  const c = await GatewayClient.connect(url, { codec });
  const got: Delivery[] = [];
  c.onDelivery = (d) => got.push(d);
  const reply = await c.sub(topic, since);
  await sleep(150);
  await c.close();
  return { reply, got };
}

describe('last message on subscribe (memory broker)', () => {
  it('a sub without since gets ok and then the latest message, in both codecs; plain topics get nothing', async () => {
    const g = await startGateway(['--history-size', '0', ...RULES]);
    try {
      await publish(g.http, 'ticker.eur', { px: 1.07 });
      await publish(g.http, 'ticker.eur', { px: 1.08 });
      await publish(g.http, 'plain', { px: 1 });
      for (const codec of ['json', 'msgpack'] as const) {
        const { reply, got } = await subscribeAndCollect(g.ws, 'ticker.eur', codec);
        assert.equal(reply.seq, 2);
        assert.deepEqual(got, [{ t: 'ticker.eur', s: 2, d: { px: 1.08 } }]);
      }
      assert.deepEqual((await subscribeAndCollect(g.ws, 'plain')).got, []);
      assert.deepEqual((await subscribeAndCollect(g.ws, 'ticker.none')).got, [], 'no message yet: nothing');
      assert.equal(await metric(g.http, 'wsgate_last_message_hits_total'), 2);
    } finally {
      await g.stop();
    }
  });

  it('a sub with since keeps recovery semantics (no extra message)', async () => {
    const g = await startGateway(['--history-size', '10', ...RULES]);
    try {
      const first = await subscribeAndCollect(g.ws, 'ticker.usd');
      await publish(g.http, 'ticker.usd', 1);
      await publish(g.http, 'ticker.usd', 2);
      const r = await subscribeAndCollect(g.ws, 'ticker.usd', 'json', { seq: 2, epoch: first.reply.epoch as string });
      assert.equal(r.reply.recovered, true);
      assert.deepEqual(r.got, []);
      const behind = await subscribeAndCollect(g.ws, 'ticker.usd', 'json', { seq: 1, epoch: first.reply.epoch as string });
      assert.deepEqual(behind.got.map((d) => d.s), [2], 'exactly the missed one, once');
    } finally {
      await g.stop();
    }
  });

  it('the latest message arrives before live deliveries, with no duplicate', async () => {
    const g = await startGateway(['--history-size', '0', ...RULES]);
    try {
      await publish(g.http, 'ticker.live', 0);
      const c = await GatewayClient.connect(g.ws);
      const got: number[] = [];
      c.onDelivery = (d) => got.push(d.s);
      await c.sub('ticker.live');
      for (let i = 1; i <= 3; i++) await publish(g.http, 'ticker.live', i);
      await eventually('live', () => got.length === 4);
      assert.deepEqual(got, [1, 2, 3, 4]);
      await c.close();
    } finally {
      await g.stop();
    }
  });
});

describe('last message on subscribe (redis, two nodes)', { timeout: 30_000 }, () => {
  let broker: BrokerServer;
  const nodes: { gateway: Gateway; url: string; port: number }[] = [];

  before(async () => {
    broker = await BrokerServer.start('redis');
    for (let i = 0; i < 2; i++) nodes.push(await startNode(broker.url, ['--broker-linger', '0', '--history-size', '0', ...RULES]));
    await eventually('brokers up', () => nodes.every((n) => n.gateway.broker.ready()));
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.gateway.close()));
    await broker.stop();
  });

  it('is cluster-wide and survives a node restart', async () => {
    await publish(`http://127.0.0.1:${(nodes[0] as { port: number }).port}`, 'ticker.gbp', { px: 1.2 });
    await publish(`http://127.0.0.1:${(nodes[0] as { port: number }).port}`, 'ticker.gbp', { px: 1.3 });
    const onB = await subscribeAndCollect((nodes[1] as { url: string }).url, 'ticker.gbp', 'msgpack');
    assert.deepEqual(onB.got, [{ t: 'ticker.gbp', s: 2, d: { px: 1.3 } }]);
    await (nodes[0] as { gateway: Gateway }).gateway.close();
    nodes[0] = await startNode(broker.url, ['--broker-linger', '0', '--history-size', '0', ...RULES]);
    await eventually('restarted node up', () => (nodes[0] as { gateway: Gateway }).gateway.broker.ready());
    const onRestarted = await subscribeAndCollect((nodes[0] as { url: string }).url, 'ticker.gbp');
    assert.deepEqual(onRestarted.got, [{ t: 'ticker.gbp', s: 2, d: { px: 1.3 } }]);
  });
});

describe('last message on subscribe (nats, two nodes)', { timeout: 30_000 }, () => {
  let broker: BrokerServer;
  const nodes: { gateway: Gateway; url: string; port: number }[] = [];

  before(async () => {
    broker = await BrokerServer.start('nats');
    for (let i = 0; i < 2; i++) nodes.push(await startNode(broker.url, ['--history-size', '0', ...RULES]));
    await eventually('brokers up', () => nodes.every((n) => n.gateway.broker.ready()));
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.gateway.close()));
    await broker.stop();
  });

  it('lives on the node: a node holding the topic has the latest message from any node; one gaining interest starts without', async () => {
    const a = nodes[0] as { url: string; port: number };
    const b = nodes[1] as { url: string; port: number };
    const holder = await GatewayClient.connect(b.url);
    const seen: Delivery[] = [];
    holder.onDelivery = (d) => seen.push(d);
    await holder.sub('ticker.chf');
    await publish(`http://127.0.0.1:${a.port}`, 'ticker.chf', 'x');
    await eventually('delivered on B', () => seen.length === 1);
    const onB = await subscribeAndCollect(b.url, 'ticker.chf');
    assert.deepEqual(onB.got.map((d) => d.d), ['x']);
    // A published without holding the topic; gaining interest restarts its numbering (it cannot know
    // what other nodes published meanwhile), so its copy is not offered as the latest.
    const onA = await subscribeAndCollect(a.url, 'ticker.chf');
    assert.deepEqual(onA.got, []);
    await holder.close();
  });
});
