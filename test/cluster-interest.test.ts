import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Redis from 'ioredis';
import { GatewayClient } from '../src/client/gateway-client';
import type { Gateway } from '../src/server/gateway';
import { BrokerServer, eventually, sleep, startNode } from './helpers/brokers';

const LINGER_MS = 300;

/** A node holds a broker subscription only while it has local subscribers (plus a short linger). */
for (const kind of ['nats', 'redis'] as const) {
  describe(`interest routing via ${kind}`, { timeout: 30_000 }, () => {
    let broker: BrokerServer;
    let node: { gateway: Gateway; url: string };
    let redis: Redis | null = null;

    /** Subscriptions for `topic` as the broker itself counts them. */
    const held = async (topic: string): Promise<number> => {
      if (redis === null) return broker.natsSubscriptions(`wsgate.t.${topic.replaceAll('.', '%')}`);
      const [, n] = (await redis.pubsub('NUMSUB', `wsgate:m:${topic}`)) as [string, number];
      return Number(n);
    };

    before(async () => {
      broker = await BrokerServer.start(kind);
      node = await startNode(broker.url, ['--broker-linger', String(LINGER_MS)]);
      await eventually('broker up', () => node.gateway.broker.ready());
      if (kind === 'redis') redis = new Redis(broker.port, '127.0.0.1');
    });

    after(async () => {
      redis?.disconnect();
      await node.gateway.close();
      await broker.stop();
    });

    it('subscribes on the first local subscriber and unsubscribes after the linger', async () => {
      const topic = 'interest.a';
      assert.equal(await held(topic), 0);
      const a = await GatewayClient.connect(node.url);
      const b = await GatewayClient.connect(node.url, { codec: 'msgpack' });
      await a.sub(topic);
      await b.sub(topic);
      await eventually('broker subscription', async () => (await held(topic)) === 1);
      assert.equal(node.gateway.stats.brokerSubscriptions, 1);
      await a.unsub(topic);
      await b.unsub(topic);
      // Within the linger the interest stays: churn costs the broker nothing.
      assert.equal(await held(topic), 1);
      await eventually('interest dropped', async () => (await held(topic)) === 0, LINGER_MS * 10);
      assert.equal(node.gateway.stats.brokerSubscriptions, 0);
      await a.close();
      await b.close();
    });

    it('keeps the subscription through churn shorter than the linger', async () => {
      const topic = 'interest.churn';
      const a = await GatewayClient.connect(node.url);
      await a.sub(topic);
      await eventually('broker subscription', async () => (await held(topic)) === 1);
      for (let i = 0; i < 5; i++) {
        await a.unsub(topic);
        await sleep(LINGER_MS / 5);
        await a.sub(topic);
      }
      assert.equal(await held(topic), 1);
      await a.close(); // a closing connection counts as its subscriptions leaving
      await eventually('interest dropped after close', async () => (await held(topic)) === 0, LINGER_MS * 10);
    });

    it('holds one broker subscription per topic, not per subscriber', async () => {
      const clients = await Promise.all(Array.from({ length: 20 }, () => GatewayClient.connect(node.url)));
      await Promise.all(clients.map((c, i) => c.sub(`interest.t${i % 4}`)));
      for (let t = 0; t < 4; t++) await eventually('subscription', async () => (await held(`interest.t${t}`)) === 1);
      assert.equal(node.gateway.stats.brokerSubscriptions, 4);
      await Promise.all(clients.map((c) => c.close()));
      await eventually('all dropped', () => node.gateway.stats.brokerSubscriptions === 0, LINGER_MS * 10);
    });
  });
}
