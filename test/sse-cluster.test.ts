import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BrokerServer, eventually, startNode } from './helpers/brokers';
import { type ChildGateway, spawnGateway } from './helpers/gateway';
import { SwitchProxy, delivered, publishTo, watch } from './helpers/sse';
import type { Gateway } from '../src/server/gateway';

type Node = { gateway: Gateway; port: number };


describe('SSE across two nodes through Redis', { timeout: 60_000 }, () => {
  let broker: BrokerServer;
  const nodes: Node[] = [];
  let proxy: SwitchProxy;
  let target = 0;
  before(async () => {
    broker = await BrokerServer.start('redis');
    for (let i = 0; i < 2; i++) nodes.push(await startNode(broker.url, ['--api-insecure', '--history-size', '1000', '--drain-window', '100']));
    await eventually('brokers up', () => nodes.every((n) => n.gateway.broker.ready()));
    proxy = await SwitchProxy.start(() => (nodes[target] as Node).port);
  });
  after(async () => {
    await proxy.stop();
    await Promise.all(nodes.map((n) => n.gateway.close()));
    await broker.stop();
  });

  it('a drained node ends the stream; EventSource reconnects to the other node with Last-Event-ID and resumes every topic exactly', async () => {
    const [a, b] = nodes as [Node, Node];
    const { es, events } = watch(`http://127.0.0.1:${proxy.port}/sse?topics=x.1,x.2`);
    await eventually('subscribed on node A', () => events.filter((e) => e.type === 'subscribed').length === 2);
    for (let i = 0; i < 5; i++) await publishTo(b.port, i % 2 === 0 ? 'x.1' : 'x.2', i);
    await eventually('five live', () => delivered(events).length === 5);
    // New connections go to node B from now on; node A drains (event: close 1012, the stream ends).
    target = 1;
    const draining = a.gateway.drain();
    await eventually('close event', () => events.some((e) => e.type === 'close'));
    // Published while the client is between nodes: it must get these exactly once, in order.
    for (let i = 5; i < 15; i++) await publishTo(b.port, i % 2 === 0 ? 'x.1' : 'x.2', i);
    await eventually('all fifteen', () => delivered(events).length === 15, 15_000);
    await draining;
    await publishTo(b.port, 'x.1', 'live');
    await eventually('live after resume', () => delivered(events).length === 16);
    es.close();
    const seen = delivered(events);
    assert.equal(new Set(seen).size, seen.length, `no repeats: ${seen.join(' ')}`);
    for (const t of ['x.1', 'x.2']) {
      const seqs = seen.filter((s) => s.startsWith(t + ':')).map((s) => Number(s.split(':')[1]));
      assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), `${t} in order without gaps`);
    }
    assert.equal((events.find((e) => e.type === 'close')?.data as { code: number }).code, 1012);
    assert.ok(!events.some((e) => e.type === 'gap'));
  });
});

describe('SSE with --workers 2', { timeout: 60_000 }, () => {
  let gw: ChildGateway;
  before(async () => (gw = await spawnGateway(['--workers', '2', '--history-size', '100'], {}, 40_000)));
  after(() => gw.stop());

  it('streams on every worker get each message, and Last-Event-ID resumes exactly whichever worker takes the reconnect', async () => {
    const url = `http://127.0.0.1:${gw.port}/sse?topics=wk.1,wk.2`;
    const streams = [watch(url), watch(url), watch(url)];
    await eventually('subscribed', () => streams.every((s) => s.events.filter((e) => e.type === 'subscribed').length === 2), 15_000);
    for (let i = 0; i < 4; i++) await publishTo(gw.port, i % 2 === 0 ? 'wk.1' : 'wk.2', i);
    await eventually('all streams', () => streams.every((s) => delivered(s.events).length === 4));
    const cursor = streams[0]?.events.at(-1)?.id as string;
    for (const s of streams) s.es.close();
    for (let i = 4; i < 8; i++) await publishTo(gw.port, i % 2 === 0 ? 'wk.1' : 'wk.2', i);
    const again = watch(url, { headers: { 'last-event-id': cursor } });
    await eventually('resumed', () => delivered(again.events).length === 4);
    again.es.close();
    assert.deepEqual(delivered(again.events), ['wk.1:3', 'wk.1:4', 'wk.2:3', 'wk.2:4']);
  });
});
