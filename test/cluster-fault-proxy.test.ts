import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CommandError, type Delivery, GatewayClient } from '../src/client/gateway-client';
import type { Gateway } from '../src/server/gateway';
import { BrokerServer, eventually, sleep, startNode } from './helpers/brokers';
import { FaultProxy } from './helpers/fault-proxy';

/**
 * Network faults between one node (A) and its broker, injected by a TCP proxy while traffic flows; node B
 * talks to the broker directly. A's subscriber hears B's publishes through the proxy and B's subscriber
 * hears A's. Each fault is held for seconds, not minutes.
 */

const MAX_PENDING = 50;
const readyz = async (port: number): Promise<number> => (await fetch(`http://127.0.0.1:${port}/readyz`)).status;

/** Deliveries of `{n}` carry 0, 1, 2, … with none missing or repeated. */
function assertExactly(got: Delivery[], n: number, what: string): void {
  assert.deepEqual(
    got.map((d) => (d.d as { n: number }).n),
    Array.from({ length: n }, (_, i) => i),
    what,
  );
}

for (const kind of ['nats', 'redis'] as const) {
  describe(`broker faults through a TCP proxy (${kind})`, { timeout: 60_000 }, () => {
    let broker: BrokerServer;
    let proxy: FaultProxy;
    let a: { gateway: Gateway; port: number; url: string };
    let b: { gateway: Gateway; port: number; url: string };
    const clients: GatewayClient[] = [];
    let topicNo = 0;

    before(async () => {
      broker = await BrokerServer.start(kind);
      proxy = await FaultProxy.start(broker.port);
      a = await startNode(`${kind}://127.0.0.1:${proxy.port}`, ['--broker-max-pending', String(MAX_PENDING)]);
      b = await startNode(broker.url);
      await eventually('brokers up', () => a.gateway.broker.ready() && b.gateway.broker.ready());
    });
    after(async () => {
      await Promise.all(clients.map((c) => c.close()));
      await Promise.all([a.gateway.close(), b.gateway.close()]);
      await proxy.close();
      await broker.stop();
    });

    /** A fresh topic with a subscriber on each node and a publisher on each node. */
    async function setup() {
      const topic = `fault${topicNo++}`;
      const connect = async (url: string) => {
        const c = await GatewayClient.connect(url);
        clients.push(c);
        return c;
      };
      const [subA, subB, pubA, pubB] = await Promise.all([connect(a.url), connect(b.url), connect(a.url), connect(b.url)]);
      const onA: Delivery[] = [];
      const onB: Delivery[] = [];
      subA.onDelivery = (d) => onA.push(d);
      subB.onDelivery = (d) => onB.push(d);
      await Promise.all([subA.sub(topic), subB.sub(topic)]);
      return { topic, onA, onB, pubA, pubB };
    }

    it('delay (150 ms each way): everything arrives, in order, late; ready throughout', async () => {
      const { topic, onA, pubB } = await setup();
      proxy.set({ kind: 'delay', ms: 150 });
      try {
        const sentAt: number[] = [];
        const receivedAt: number[] = [];
        const orig = onA.push.bind(onA);
        onA.push = (...d: Delivery[]) => (receivedAt.push(Date.now()), orig(...d));
        for (let n = 0; n < 20; n++) {
          sentAt.push(Date.now());
          await pubB.pub(topic, { n });
        }
        assert.equal(await readyz(a.port), 200);
        await eventually('20 deliveries through the delay', () => onA.length === 20, 10_000);
        assertExactly(onA, 20, 'delayed deliveries');
        for (let i = 0; i < 20; i++) assert.ok((receivedAt[i] as number) - (sentAt[i] as number) >= 140, `message ${i} was delayed`);
      } finally {
        proxy.set({ kind: 'pass' });
      }
    });

    it('throttle (4 KB/s): a 30 KB burst trickles in, in order; nothing lost', async () => {
      const { topic, onA, pubB } = await setup();
      proxy.set({ kind: 'throttle', bytesPerSecond: 4096 });
      try {
        const pad = 'x'.repeat(1000);
        await Promise.all(Array.from({ length: 30 }, (_, n) => pubB.pub(topic, { n, pad })));
        await sleep(1000);
        assert.ok(onA.length < 30, `throttled: ${onA.length} of 30 after 1 s`);
        assert.equal(await readyz(a.port), 200);
      } finally {
        proxy.set({ kind: 'pass' });
      }
      await eventually('the rest once the link is back', () => onA.length === 30, 10_000);
      assertExactly(onA, 30, 'throttled deliveries');
    });

    it(`stall (3 s, nothing read, nothing closed): no loss once it ends; ${kind === 'redis' ? `publishes beyond --broker-max-pending (${MAX_PENDING}) refused with unavailable` : 'local delivery goes on'}`, async () => {
      const { topic, onA, onB, pubA, pubB } = await setup();
      proxy.set({ kind: 'stall' });
      let fromA: Promise<unknown>[] = [];
      const refused: string[] = [];
      try {
        // B's publishes wait in the stalled connection to A; A's wait in A's connection to the broker.
        const fromB = Array.from({ length: 20 }, (_, n) => pubB.pub(topic, { n }));
        await Promise.all(fromB);
        const count = kind === 'redis' ? MAX_PENDING + 10 : 20;
        fromA = Array.from({ length: count }, (_, n) =>
          pubA.pub(topic, { n, a: true }).catch((e: unknown) => {
            refused.push(e instanceof CommandError ? e.code : String(e));
          }),
        );
        await sleep(3000);
        // A stall that closes nothing is not seen as an outage (NATS notices after 2 missed 5-s PINGs).
        assert.equal(await readyz(a.port), 200);
        assert.equal(onA.length, kind === 'nats' ? 20 : 0, kind === 'nats' ? "A's own publishes are delivered locally" : 'nothing reaches A');
        if (kind === 'redis') assert.deepEqual(refused, Array(10).fill('unavailable'), `beyond ${MAX_PENDING} pending publishes are refused`);
      } finally {
        proxy.set({ kind: 'pass' });
      }
      await Promise.all(fromA);
      const fromA2 = kind === 'redis' ? MAX_PENDING : 20;
      await eventually('every accepted publish delivered on both nodes', () => onA.length === 20 + fromA2 && onB.length === 20 + fromA2, 15_000);
      const fromBOnA = onA.filter((d) => !(d.d as { a?: boolean }).a);
      const fromAOnB = onB.filter((d) => (d.d as { a?: boolean }).a);
      assertExactly(fromBOnA, 20, "B's publishes on A");
      assertExactly(fromAOnB, fromA2, "A's publishes on B");
      if (kind === 'redis') onA.forEach((d, i) => assert.equal(d.s, (onA[0] as Delivery).s + i, 'Redis numbering has no gap'));
    });

    it('reset (RST, 1 s refused): readyz 503 then 200, the documented answers meanwhile, subscriptions restored', async () => {
      const { topic, onA, pubA, pubB } = await setup();
      const failures = a.gateway.stats.brokerFailures;
      const reset = proxy.reset(1000);
      await eventually('A not ready', async () => (await readyz(a.port)) === 503, 1000);
      assert.equal(await readyz(b.port), 200, 'B is not affected');
      if (kind === 'redis') await assert.rejects(pubA.pub(topic, { n: -1 }), { code: 'unavailable' });
      else {
        // NATS: delivered to A's own subscribers, counted as not forwarded.
        await pubA.pub(topic, { n: -1 });
        assert.ok(a.gateway.stats.brokerFailures > failures);
      }
      await reset;
      await eventually('A ready again', async () => (await readyz(a.port)) === 200, 10_000);
      const before = onA.filter((d) => (d.d as { n: number }).n >= 0).length;
      assert.equal(before, 0);
      for (let n = 0; n < 5; n++) await pubB.pub(topic, { n });
      await eventually("B's publishes reach A again", () => onA.filter((d) => (d.d as { n: number }).n >= 0).length === 5, 10_000);
      assertExactly(
        onA.filter((d) => (d.d as { n: number }).n >= 0),
        5,
        'after the reset',
      );
    });

    it(`cut mid-message: the node reconnects and resubscribes; ${kind === 'redis' ? 'the cut message is refilled from the stream (no gap)' : 'the cut message is lost (at most once), later ones arrive'}`, async () => {
      const { topic, onA, pubB } = await setup();
      // The topic has a position on A before the cut (Redis refills only topics that have one; see the report).
      await pubB.pub(topic, { n: 0 });
      await eventually('first message on A', () => onA.length === 1);
      const accepted = proxy.accepted;
      proxy.cutMidMessage();
      await pubB.pub(topic, { n: 1, pad: 'y'.repeat(4000) });
      await eventually('A reconnected', () => proxy.accepted > accepted, 10_000);
      await eventually('A ready', async () => (await readyz(a.port)) === 200, 10_000);
      for (let n = 2; n <= 6; n++) await pubB.pub(topic, { n });
      const ns = () => onA.map((d) => (d.d as { n: number }).n);
      if (kind === 'redis') {
        await eventually('all 7 on A', () => onA.length === 7, 10_000).catch((e: Error) => {
          throw new Error(`${e.message}: got ${JSON.stringify(onA.map((d) => [d.s, (d.d as { n: number }).n]))}`);
        });
        assertExactly(onA, 7, 'refilled and live');
      } else {
        await eventually('the later 5 on A', () => ns().filter((n) => n >= 2).length === 5, 10_000);
        assert.deepEqual(ns().filter((n) => n !== 1), [0, 2, 3, 4, 5, 6]);
      }
    });
  });
}
