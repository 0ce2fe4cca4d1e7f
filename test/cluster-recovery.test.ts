import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Delivery, GatewayClient } from '../src/client/gateway-client';
import type { Gateway } from '../src/server/gateway';
import { BrokerServer, eventually, startNode } from './helpers/brokers';

/** Redis keeps sequence, epoch and history cluster-wide: a client may resume on any node. */
describe('cluster recovery via redis', { timeout: 30_000 }, () => {
  let broker: BrokerServer;
  const nodes: { gateway: Gateway; url: string }[] = [];

  before(async () => {
    broker = await BrokerServer.start('redis');
    for (let i = 0; i < 2; i++) nodes.push(await startNode(broker.url, ['--broker-linger', '100', '--history-size', '50']));
    await eventually('brokers up', () => nodes.every((n) => n.gateway.broker.ready()));
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.gateway.close()));
    await broker.stop();
  });

  const A = () => nodes[0] as { url: string };
  const B = () => nodes[1] as { url: string; gateway: Gateway };

  it('answers sub with the cluster position on a node that never saw the topic', async () => {
    const pub = await GatewayClient.connect(A().url);
    for (let i = 0; i < 5; i++) await pub.pub('rec.pos', i);
    const onA = await GatewayClient.connect(A().url);
    const onB = await GatewayClient.connect(B().url);
    const ra = await onA.sub('rec.pos');
    const rb = await onB.sub('rec.pos');
    assert.equal(ra.seq, 5);
    assert.deepEqual([rb.seq, rb.epoch], [ra.seq, ra.epoch]);
    await Promise.all([pub.close(), onA.close(), onB.close()]);
  });

  for (const codec of ['json', 'msgpack'] as const) {
    it(`resumes on another node from the Redis stream, then continues live (${codec})`, async () => {
      const topic = `rec.move.${codec}`;
      const pub = await GatewayClient.connect(A().url);
      const first = await GatewayClient.connect(A().url, { codec });
      const seen: Delivery[] = [];
      first.onDelivery = (d) => seen.push(d);
      const { epoch } = await first.sub(topic);
      for (let i = 0; i < 10; i++) await pub.pub(topic, { i });
      await eventually('first ten', () => seen.length === 10);
      await first.close();
      for (let i = 10; i < 30; i++) await pub.pub(topic, { i });

      // Node B holds no interest in the topic and has no history of it.
      assert.equal(B().gateway.hub.get(topic), undefined);
      const second = await GatewayClient.connect(B().url, { codec });
      const resumed: Delivery[] = [];
      second.onDelivery = (d) => resumed.push(d);
      const reply = await second.sub(topic, { seq: (seen.at(-1) as Delivery).s, epoch: epoch as string });
      assert.equal(reply.recovered, true);
      assert.equal(reply.seq, 30);
      for (let i = 30; i < 35; i++) await pub.pub(topic, { i });
      await eventually('replay and live', () => resumed.length === 25);
      assert.deepEqual(resumed.map((d) => d.s), Array.from({ length: 25 }, (_, k) => 11 + k));
      assert.deepEqual(resumed.map((d) => (d.d as { i: number }).i), Array.from({ length: 25 }, (_, k) => 10 + k));
      assert.ok(B().gateway.stats.replayed >= 20);
      await Promise.all([pub.close(), second.close()]);
    });
  }

  it('reports a gap when the position is older than the retained history or of another epoch', async () => {
    const topic = 'rec.gap';
    const pub = await GatewayClient.connect(A().url);
    const c = await GatewayClient.connect(B().url);
    const { epoch } = await c.sub(topic);
    await c.unsub(topic);
    for (let i = 0; i < 80; i++) await pub.pub(topic, i); // history keeps 50
    const c2 = await GatewayClient.connect(B().url);
    const old = await c2.sub(topic, { seq: 0, epoch: epoch as string });
    assert.equal(old.recovered, false);
    assert.equal(old.seq, 80);
    const c3 = await GatewayClient.connect(A().url);
    const other = await c3.sub(topic, { seq: 79, epoch: 'not-the-epoch' });
    assert.equal(other.recovered, false);
    await Promise.all([pub.close(), c.close(), c2.close(), c3.close()]);
  });
});
