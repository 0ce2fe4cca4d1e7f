import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Delivery, GatewayClient } from '../src/client/gateway-client';
import type { Gateway } from '../src/server/gateway';
import { BrokerServer, eventually, startNode } from './helpers/brokers';

/** Cross-node fan-out through a real broker: exactly once, in order, encoded once. */
for (const kind of ['nats', 'redis'] as const) {
  describe(`cluster fan-out via ${kind}`, { timeout: 60_000 }, () => {
    let broker: BrokerServer;
    const nodes: { gateway: Gateway; url: string }[] = [];
    const clients: GatewayClient[] = [];

    before(async () => {
      broker = await BrokerServer.start(kind);
      // Publishers here send hundreds of pub commands at once on one socket: over the default command
      // burst, which is not under test here.
      for (let i = 0; i < 3; i++) nodes.push(await startNode(broker.url, ['--broker-linger', '200', '--max-batch', '5000', '--max-commands-per-second', '0']));
      await eventually('brokers up', () => nodes.every((n) => n.gateway.broker.ready()));
    });

    after(async () => {
      await Promise.all(clients.map((c) => c.close()));
      await Promise.all(nodes.map((n) => n.gateway.close()));
      await broker.stop();
    });

    const connect = async (node: number, codec: 'json' | 'msgpack' = 'json') => {
      const c = await GatewayClient.connect((nodes[node] as { url: string }).url, { codec });
      clients.push(c);
      return c;
    };

    /** Subscribes a client and records what it receives. */
    const recorder = async (node: number, codec: 'json' | 'msgpack', topic: string) => {
      const c = await connect(node, codec);
      const got: Delivery[] = [];
      c.onDelivery = (d) => got.push(d);
      await c.sub(topic);
      return got;
    };

    /** Publishes `n` messages from one client, at most `window` unanswered at a time. */
    const publishMany = async (c: GatewayClient, topic: string, from: string, n: number, window = 100) => {
      for (let i = 0; i < n; i += window) {
        const batch: Promise<unknown>[] = [];
        for (let k = i; k < Math.min(n, i + window); k++) batch.push(c.pub(topic, { from, n: k }));
        await Promise.all(batch);
      }
    };

    it('delivers every publish to every subscriber on every node exactly once and in order', async () => {
      const topic = 'load.one';
      const subs = [await recorder(0, 'json', topic), await recorder(0, 'msgpack', topic), await recorder(1, 'json', topic), await recorder(1, 'msgpack', topic), await recorder(2, 'msgpack', topic)];
      const pub = await connect(0);
      const N = 3000;
      await publishMany(pub, topic, 'a', N);
      await eventually('all deliveries', () => subs.every((s) => s.length >= N), 20_000);
      for (const got of subs) {
        assert.equal(got.length, N);
        got.forEach((d, i) => {
          assert.deepEqual(d.d, { from: 'a', n: i });
          if (i > 0) assert.equal(d.s, (got[i - 1] as Delivery).s + 1, 'sequence without gaps');
        });
      }
      if (kind === 'redis') {
        // One numbering for the whole cluster.
        for (const got of subs) assert.deepEqual(got.map((d) => d.s), (subs[0] as Delivery[]).map((d) => d.s));
      }
      const [a, b] = nodes as [{ gateway: Gateway; url: string }, { gateway: Gateway; url: string }];
      assert.ok(a.gateway.stats.brokerPublished >= N && b.gateway.stats.brokerReceived >= N);
      assert.equal(a.gateway.stats.brokerFailures, 0);
      // NATS: the publishing node delivers locally and gets no echo; Redis: it delivers the echo.
      if (kind === 'nats') assert.equal(a.gateway.stats.brokerReceived, 0, 'no echo of own publishes');
      else assert.ok(a.gateway.stats.brokerReceived >= N);
      assert.ok(b.gateway.metrics.brokerLag.count >= N, 'lag measured on the receiving node');
      await eventually('round trips measured', () => a.gateway.metrics.brokerRoundtrip.count > 0, 3000);
    });

    it('keeps each publisher in order when several nodes publish to one topic', async () => {
      const topic = 'load.many';
      const subs = [await recorder(0, 'json', topic), await recorder(1, 'msgpack', topic), await recorder(2, 'json', topic)];
      const N = 1000;
      await Promise.all([publishMany(await connect(0), topic, 'a', N), publishMany(await connect(1), topic, 'b', N), publishMany(await connect(2, 'msgpack'), topic, 'c', N)]);
      await eventually('all deliveries', () => subs.every((s) => s.length >= 3 * N), 20_000);
      for (const got of subs) {
        assert.equal(got.length, 3 * N);
        for (const from of ['a', 'b', 'c']) {
          const ns = got.map((d) => d.d as { from: string; n: number }).filter((d) => d.from === from).map((d) => d.n);
          assert.deepEqual(ns, [...Array(N).keys()], `publisher ${from} exactly once, in order`);
        }
      }
      if (kind === 'redis') {
        const order = (got: Delivery[]) => got.map((d) => `${d.s}:${JSON.stringify(d.d)}`);
        for (const got of subs) assert.deepEqual(order(got), order(subs[0] as Delivery[]), 'same order on every node');
      }
    });

    it('answers sub only once the broker subscription is live: a publish right after ok arrives', async () => {
      const sub = await connect(1);
      const pub = await connect(0);
      const got: Delivery[] = [];
      sub.onDelivery = (d) => got.push(d);
      for (let i = 0; i < 50; i++) {
        await sub.sub(`fresh.${i}`);
        await pub.pub(`fresh.${i}`, i);
      }
      await eventually('every first message', () => got.length === 50, 5000).catch(() => undefined);
      assert.deepEqual(got.map((d) => d.t), [...Array(50).keys()].map((i) => `fresh.${i}`));
    });

    it('forwards a batch larger than one turn\'s outbox exactly once and in order', async () => {
      // 3,000 publishes taken in one event-loop turn: more than the 1,024 envelopes a node holds back.
      const topic = 'batch.big';
      const subs = [await recorder(1, 'json', topic), await recorder(2, 'msgpack', topic), await recorder(0, 'json', topic)];
      const N = 3000;
      const port = new URL((nodes[0] as { url: string }).url).port;
      const body = JSON.stringify(Array.from({ length: N }, (_, n) => ({ topic, data: { n } })));
      const res = await fetch(`http://127.0.0.1:${port}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      assert.equal(res.status, 200);
      await eventually('whole batch on every node', () => subs.every((g) => g.length >= N), 20_000);
      for (const got of subs) assert.deepEqual(got.map((d) => (d.d as { n: number }).n), [...Array(N).keys()]);
    });

    it('delivers HTTP publishes across nodes and carries binary data', async () => {
      const topic = 'http.bin';
      const got = await recorder(2, 'msgpack', topic);
      const gotJson = await recorder(1, 'json', topic);
      const port = new URL((nodes[0] as { url: string }).url).port;
      const res = await fetch(`http://127.0.0.1:${port}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic, data: { hello: 'wörld' } }) });
      assert.equal(res.status, 200);
      const pub = await connect(0, 'msgpack');
      await pub.pub(topic, new Uint8Array([1, 2, 3]));
      await eventually('deliveries', () => got.length === 2 && gotJson.length === 2);
      assert.deepEqual(got[0]?.d, { hello: 'wörld' });
      assert.deepEqual(Buffer.from(got[1]?.d as Uint8Array), Buffer.from([1, 2, 3]));
      assert.deepEqual(gotJson[0]?.d, { hello: 'wörld' });
    });
  });
}
