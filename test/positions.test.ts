import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Delivery, GatewayClient } from '../src/client/gateway-client';
import { PositionMemory } from '../src/pubsub/positions';
import type { Gateway } from '../src/server/gateway';
import { BrokerServer, eventually, startNode } from './helpers/brokers';
import { metric, sleep, startGateway, SINGLE_THREAD_ONLY, TEST_WORKERS } from './helpers/gateway';

const publish = (http: string, topic: string, data: unknown) =>
  fetch(`${http}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic, data }) }).then((r) => r.json());

describe('PositionMemory', () => {
  it('forgets the least recently retired topic first when full', () => {
    const m = new PositionMemory({ ttlMs: 60_000, max: 2 });
    m.remember('a', 1, 'ea', 0);
    m.remember('b', 2, 'eb', 0);
    m.remember('a', 3, 'ea', 1); // retired again: now the most recent
    m.remember('c', 4, 'ec', 2);
    assert.equal(m.size, 2);
    assert.equal(m.take('b', 3), undefined, 'b was the least recently retired');
    assert.deepEqual({ ...m.take('a', 3) }, { seq: 3, epoch: 'ea', at: 1 });
    assert.equal(m.take('a', 3), undefined, 'taken back: the topic has a state again');
  });

  it('forgets positions older than the TTL, on take and on sweep', () => {
    const m = new PositionMemory({ ttlMs: 1000, max: 10 });
    m.remember('a', 1, 'e', 0);
    m.remember('b', 1, 'e', 800);
    assert.equal(m.take('a', 1001), undefined);
    m.evictExpired(1700);
    assert.equal(m.size, 1);
    m.evictExpired(1801);
    assert.equal(m.size, 0);
  });

  it('remembers nothing with max 0', () => {
    const m = new PositionMemory({ ttlMs: 1000, max: 0 });
    m.remember('a', 1, 'e', 0);
    assert.equal(m.size, 0);
  });
});

/**
 * The case: subscribe to a quiet topic, leave, two publishes, resume from seq 0. `received`: on
 * a broker that numbers on receipt (core NATS), whether the resuming node has both publishes yet (the
 * publish answers when it is sent, not when the other node has it).
 */
async function quietTopicResume(subscribeUrl: string, publishHttp: string, resumeUrl: string, topic: string, received?: () => boolean): Promise<void> {
  const first = await GatewayClient.connect(subscribeUrl);
  const r = await first.sub(topic);
  assert.equal(r.seq, 0);
  await first.close();
  await sleep(50);
  await publish(publishHttp, topic, 'one');
  await publish(publishHttp, topic, 'two');
  if (received !== undefined) await eventually('both publishes reached the resuming node', received);
  const again = await GatewayClient.connect(resumeUrl);
  const got: Delivery[] = [];
  again.onDelivery = (d) => got.push(d);
  const resumed = await again.sub(topic, { seq: 0, epoch: r.epoch as string });
  assert.deepEqual({ recovered: resumed.recovered, seq: resumed.seq, epoch: resumed.epoch }, { recovered: true, seq: 2, epoch: r.epoch });
  await eventually('the two missed messages', () => got.length === 2);
  assert.deepEqual(got.map((d) => [d.s, d.d]), [[1, 'one'], [2, 'two']]);
  await again.close();
}

describe('positions outlive subscribers (memory broker)', () => {
  it('a quiet topic resumed after its last subscriber left recovers what was published meanwhile', async () => {
    const g = await startGateway();
    try {
      await quietTopicResume(g.ws, g.http, g.ws, 'user:42');
    } finally {
      await g.stop();
    }
  });

  it('keeps the epoch after history expired: recovered when nothing was missed, a gap (same epoch) when it was', { skip: SINGLE_THREAD_ONLY }, async () => {
    const g = await startGateway(['--history-ttl', '1']);
    try {
      const c = await GatewayClient.connect(g.ws);
      const r = await c.sub('quiet');
      await publish(g.http, 'quiet', 1);
      await publish(g.http, 'quiet', 2);
      await c.close();
      await eventually('state retired after its history expired', () => g.gw.hub.get('quiet') === undefined, 5000);
      assert.equal(await metric(g.http, 'wsgate_remembered_positions'), 1);
      const d = await GatewayClient.connect(g.ws);
      const upToDate = await d.sub('quiet', { seq: 2, epoch: r.epoch as string });
      assert.deepEqual({ recovered: upToDate.recovered, seq: upToDate.seq, epoch: upToDate.epoch }, { recovered: true, seq: 2, epoch: r.epoch });
      await d.unsub('quiet');
      const behind = await d.sub('quiet', { seq: 0, epoch: r.epoch as string });
      assert.deepEqual({ recovered: behind.recovered, seq: behind.seq, epoch: behind.epoch }, { recovered: false, seq: 2, epoch: r.epoch });
      await d.close();
    } finally {
      await g.stop();
    }
  });

  it('a position evicted by --position-max-topics starts over with a new epoch', async () => {
    const g = await startGateway(['--position-max-topics', '1', '--history-size', '0']);
    try {
      const c = await GatewayClient.connect(g.ws);
      const a = await c.sub('a');
      await c.unsub('a');
      await c.sub('b');
      await c.unsub('b'); // b's position pushes a's out
      // Each worker's hub remembers its own copy of the positions (at most 1 each here): summed over workers.
      const remembered = await metric(g.http, 'wsgate_remembered_positions');
      assert.ok(TEST_WORKERS === 1 ? remembered === 1 : remembered >= 1 && remembered <= TEST_WORKERS, String(remembered));
      const again = await c.sub('a', { seq: 0, epoch: a.epoch as string });
      assert.equal(again.recovered, false);
      assert.notEqual(again.epoch, a.epoch);
      await c.close();
    } finally {
      await g.stop();
    }
  });
});

describe('positions outlive subscribers (redis, two nodes)', { timeout: 30_000 }, () => {
  let broker: BrokerServer;
  const nodes: { gateway: Gateway; url: string; port: number }[] = [];

  before(async () => {
    broker = await BrokerServer.start('redis');
    for (let i = 0; i < 2; i++) nodes.push(await startNode(broker.url, ['--broker-linger', '0']));
    await eventually('brokers up', () => nodes.every((n) => n.gateway.broker.ready()));
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.gateway.close()));
    await broker.stop();
  });

  const http = (i: number) => `http://127.0.0.1:${(nodes[i] as { port: number }).port}`;
  const ws = (i: number) => (nodes[i] as { url: string }).url;

  it('the quiet-topic resume recovers on the same node and on the other one', async () => {
    await quietTopicResume(ws(0), http(1), ws(0), 'user:redis-same');
    await quietTopicResume(ws(0), http(1), ws(1), 'user:redis-other');
  });
});

/**
 * Core NATS keeps no stream: a node numbers what it receives while it holds interest, so a position
 * survives the last subscriber for as long as the interest lingers (--broker-linger).
 */
describe('positions outlive subscribers (nats, two nodes)', { timeout: 30_000 }, () => {
  let broker: BrokerServer;
  const nodes: { gateway: Gateway; url: string; port: number }[] = [];

  before(async () => {
    broker = await BrokerServer.start('nats');
    for (let i = 0; i < 2; i++) nodes.push(await startNode(broker.url, ['--broker-linger', '10000']));
    await eventually('brokers up', () => nodes.every((n) => n.gateway.broker.ready()));
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.gateway.close()));
    await broker.stop();
  });

  it('the quiet-topic resume recovers on the node that held the topic, with publishes from either node', async () => {
    const a = nodes[0] as { gateway: Gateway; url: string; port: number };
    const b = nodes[1] as { port: number };
    const atTwo = (topic: string) => (): boolean => a.gateway.hub.get(topic)?.seq === 2;
    await quietTopicResume(a.url, `http://127.0.0.1:${b.port}`, a.url, 'user:nats-other', atTwo('user:nats-other'));
    await quietTopicResume(a.url, `http://127.0.0.1:${a.port}`, a.url, 'user:nats-same');
  });
});
