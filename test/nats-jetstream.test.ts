import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CommandError, type Delivery, GatewayClient } from '../src/client/gateway-client';
import type { Gateway } from '../src/server/gateway';
import { connect } from 'nats';
import { STREAM } from '../src/broker/jetstream-store';
import { BrokerServer, NatsCluster, eventually, freePort, requireBinary, sleep, startNode, waitForPort } from './helpers/brokers';
import { FaultProxy } from './helpers/fault-proxy';
import { type ChildGateway, spawnGateway } from './helpers/gateway';

/**
 * `--nats-jetstream`: numbering, history, latest message and idempotency keys cluster-wide through a real
 * nats-server -js (temporary store dir), with the Redis-mode guarantees, across node and server restarts.
 */
type Node = { gateway: Gateway; url: string; port: number };
/** The load test's topic retains all it is sent: "no loss" is a promise within the retained history. */
const LOAD_RULE = { match: 'js.load', history: { size: 5000, ttl: 300 } };
const FLAGS = ['--nats-jetstream', '--broker-linger', '0', '--history-size', '50', '--topics', JSON.stringify([{ match: 'last.*', lastMessage: true }, LOAD_RULE])];
const http = (n: Node) => `http://127.0.0.1:${n.port}`;

async function collect(url: string, topic: string, since?: { seq: number; epoch: string }) {
  const c = await GatewayClient.connect(url);
  const got: Delivery[] = [];
  c.onDelivery = (d) => got.push(d);
  const reply = await c.sub(topic, since);
  return { c, got, reply };
}

const seqs = (ds: readonly Delivery[]) => ds.map((d) => d.s);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function startNodes(url: string, n: number, out: Node[]): Promise<void> {
  for (let i = 0; i < n; i++) out.push(await startNode(url, FLAGS));
  await eventually('JetStream ready on every node', () => out.every((x) => x.gateway.broker.ready()));
}

describe('NATS JetStream mode: two gateway nodes', { timeout: 60_000 }, () => {
  let nats: BrokerServer;
  const nodes: Node[] = [];
  const A = () => nodes[0] as Node;
  const B = () => nodes[1] as Node;

  before(async () => {
    nats = await BrokerServer.start('nats', null, null, true);
    await startNodes(nats.url, 2, nodes);
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.gateway.close()));
    await nats.stop();
  });

  it('numbers a topic cluster-wide and resumes on another node with the missed messages, once, in order', async () => {
    const pub = await GatewayClient.connect(A().url);
    const first = await collect(A().url, 'js.move');
    const { epoch } = first.reply;
    for (let i = 0; i < 10; i++) await pub.pub('js.move', { i });
    await eventually('first ten', () => first.got.length === 10);
    await first.c.close();
    const acks = [];
    for (let i = 10; i < 30; i++) acks.push((await pub.pub('js.move', { i })).seq);
    assert.deepEqual(acks, range(11, 30));
    await eventually('B dropped no interest it never had', () => B().gateway.hub.get('js.move') === undefined);
    const second = await collect(B().url, 'js.move', { seq: 10, epoch: epoch as string });
    assert.equal(second.reply.recovered, true);
    assert.deepEqual([second.reply.seq, second.reply.epoch], [30, epoch]);
    for (let i = 30; i < 35; i++) await pub.pub('js.move', { i });
    await eventually('replay then live', () => second.got.length === 25);
    assert.deepEqual(seqs(second.got), range(11, 35));
    assert.deepEqual(second.got.map((d) => (d.d as { i: number }).i), range(10, 34));
    // The same position and numbers on both nodes.
    const onA = await collect(A().url, 'js.move');
    assert.deepEqual([onA.reply.seq, onA.reply.epoch], [35, epoch]);
    const old = await collect(A().url, 'js.move', { seq: 5, epoch: 'another-epoch' });
    assert.equal(old.reply.recovered, false);
    await Promise.all([pub.close(), second.c.close(), onA.c.close(), old.c.close()]);
  });

  it('serves history and the last message on a node that never held the topic', async () => {
    for (let i = 1; i <= 60; i++) {
      const res = await fetch(`${http(A())}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic: 'last.px', data: { i } }) });
      assert.equal(res.status, 200);
    }
    assert.equal(B().gateway.hub.get('last.px'), undefined);
    const c = await GatewayClient.connect(B().url);
    const h = await c.command({ op: 'history', topic: 'last.px', limit: 3 });
    assert.deepEqual(h.messages?.map((m) => m.s), [58, 59, 60]);
    const all = await c.command({ op: 'history', topic: 'last.px', limit: 1000 });
    assert.deepEqual(all.messages?.map((m) => m.s), range(11, 60), 'history keeps 50');
    const after55 = await c.command({ op: 'history', topic: 'last.px', since: { seq: 55, epoch: h.epoch }, limit: 2 });
    assert.deepEqual(after55.messages?.map((m) => m.d), [{ i: 56 }, { i: 57 }]);
    await assert.rejects(c.command({ op: 'history', topic: 'last.px', since: { seq: 1, epoch: 'x' } }), (e: unknown) => e instanceof CommandError && e.code === 'unrecoverable_position');
    const viaHttp = (await (await fetch(`${http(B())}/topics/last.px/history?limit=2`)).json()) as { messages: { s: number }[] };
    assert.deepEqual(viaHttp.messages.map((m) => m.s), [59, 60]);
    const sub = await collect(B().url, 'last.px');
    await eventually('latest message', () => sub.got.length === 1);
    assert.deepEqual(sub.got[0], { t: 'last.px', s: 60, d: { i: 60 } });
    await Promise.all([c.close(), sub.c.close()]);
  });

  it('stores an idempotent publish once when it arrives on two nodes at once', async () => {
    const watcher = await collect(A().url, 'js.idem');
    const clients = await Promise.all([GatewayClient.connect(A().url), GatewayClient.connect(B().url)]);
    for (let round = 0; round < 5; round++) {
      const replies = await Promise.all(clients.map((c) => c.command({ op: 'pub', topic: 'js.idem', data: { round }, idempotencyKey: `k${round}` })));
      assert.equal(replies[0]?.seq, replies[1]?.seq, `round ${round}: one seq on both nodes`);
      assert.equal(replies[0]?.seq, round + 1);
    }
    await eventually('five deliveries', () => watcher.got.length >= 5);
    await sleep(200);
    assert.deepEqual(seqs(watcher.got), range(1, 5));
    assert.ok(A().gateway.stats.idempotentRepeats + B().gateway.stats.idempotentRepeats >= 5);
    await Promise.all([...clients.map((c) => c.close()), watcher.c.close()]);
  });

  it('keeps one order for concurrent publishers on both nodes', async () => {
    const onA = await collect(A().url, 'js.race');
    const onB = await collect(B().url, 'js.race');
    const pubs = await Promise.all([GatewayClient.connect(A().url), GatewayClient.connect(B().url)]);
    const acked = await Promise.all(pubs.map((p, n) => Promise.all(range(1, 100).map((i) => p.pub('js.race', { n, i })))));
    const all = acked.flat().map((r) => r.seq as number);
    assert.deepEqual([...all].sort((x, y) => x - y), range(1, 200), 'every seq once');
    await eventually('200 on both nodes', () => onA.got.length === 200 && onB.got.length === 200);
    assert.deepEqual(seqs(onA.got), range(1, 200));
    assert.deepEqual(onA.got, onB.got, 'same order and numbers on both nodes');
    await Promise.all([...pubs.map((p) => p.close()), onA.c.close(), onB.c.close()]);
  });

  it('resumes a quiet topic after every gateway node was killed (SIGKILL) and started again', async () => {
    // Nodes as processes of their own, so that they can be killed; none of them is left afterwards.
    const spawnTwo = () => Promise.all([0, 1].map(() => spawnGateway(['--broker', nats.url, ...FLAGS, '--client-publish'])));
    const first = await spawnTwo();
    try {
      const pub = await GatewayClient.connect(`ws://127.0.0.1:${(first[0] as ChildGateway).port}/ws`);
      for (const d of ['a', 'b', 'c', 'd']) await pub.pub('js.quiet', d);
      const { epoch } = await pub.command({ op: 'history', topic: 'js.quiet', limit: 1 });
      await pub.close();
      await Promise.all(first.map((g) => g.stop()));
      const second = await spawnTwo();
      try {
        const url = `ws://127.0.0.1:${(second[1] as ChildGateway).port}/ws`;
        const r = await collect(url, 'js.quiet', { seq: 1, epoch: epoch as string });
        assert.equal(r.reply.recovered, true);
        await eventually('three missed', () => r.got.length === 3);
        assert.deepEqual(r.got.map((d) => d.d), ['b', 'c', 'd']);
        const p2 = await GatewayClient.connect(`ws://127.0.0.1:${(second[0] as ChildGateway).port}/ws`);
        assert.equal((await p2.pub('js.quiet', 'e')).seq, 5);
        await eventually('live after the restart', () => r.got.length === 4);
        await Promise.all([p2.close(), r.c.close()]);
      } finally {
        await Promise.all(second.map((g) => g.stop()));
      }
    } finally {
      await Promise.all(first.map((g) => g.stop()));
    }
  });

  it('loses nothing for a resumable subscriber when nats-server is restarted under load', async () => {
    const sub = await collect(B().url, 'js.load');
    const pub = await GatewayClient.connect(A().url);
    const acked: number[] = [];
    const ackedData = new Map<number, number>();
    let stop = false;
    const load = (async () => {
      for (let i = 0; !stop && i < 5000; i++) {
        try {
          const seq = (await pub.pub('js.load', i)).seq as number;
          acked.push(seq);
          ackedData.set(seq, i);
        } catch {
          await sleep(20); // unavailable while the node sees the outage
        }
      }
    })();
    await eventually('load running', () => acked.length > 50);
    await nats.kill();
    await eventually('the outage seen', () => nodes.every((n) => !n.gateway.broker.ready()));
    await sleep(300);
    await nats.spawn();
    await eventually('nodes ready again', () => nodes.every((n) => n.gateway.broker.ready()), 20_000);
    const before = acked.length;
    await eventually('publishes taken again', () => acked.length > before + 50, 20_000);
    stop = true;
    await load;
    const last = acked[acked.length - 1] as number;
    await eventually('subscriber caught up', () => (sub.got.at(-1)?.s ?? 0) >= last, 20_000);
    // Every acknowledged publish reached the subscriber, in order, each once: no gap in the numbering.
    const at = sub.got.findIndex((d, i) => d.s !== i + 1);
    assert.equal(at, -1, `seqs around the first gap: ${JSON.stringify(seqs(sub.got.slice(Math.max(0, at - 3), at + 3)))} of ${sub.got.length}; refilled ${B().gateway.stats.brokerRefilled}`);
    // ...and each one with the data it was acknowledged for (the stream kept what it acknowledged).
    for (const [s, i] of ackedData) assert.equal(sub.got[s - 1]?.d, i, `seq ${s}`);
    assert.ok(sub.got.length > before, 'delivery resumed after the restart');
    await Promise.all([pub.close(), sub.c.close()]);
  });
});

describe('NATS JetStream mode: a broker message cut in transit', { timeout: 60_000 }, () => {
  let nats: BrokerServer;
  let proxy: FaultProxy;
  const nodes: Node[] = [];

  before(async () => {
    nats = await BrokerServer.start('nats', null, null, true);
    proxy = await FaultProxy.start(nats.port);
    nodes.push(await startNode(nats.url, FLAGS), await startNode(`nats://127.0.0.1:${proxy.port}`, FLAGS));
    await eventually('JetStream ready on every node', () => nodes.every((x) => x.gateway.broker.ready()));
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.gateway.close()));
    await proxy.close();
    await nats.stop();
  });

  it('refills what the receiving node missed from the stream: no gap, no duplicate', async () => {
    const [A, B] = nodes as [Node, Node];
    const sub = await collect(B.url, 'js.cut');
    const pub = await GatewayClient.connect(A.url);
    await pub.pub('js.cut', { n: 0 });
    await eventually('first', () => sub.got.length === 1);
    const accepted = proxy.accepted;
    proxy.cutMidMessage();
    await pub.pub('js.cut', { n: 1, pad: 'y'.repeat(4000) });
    await eventually('B reconnected', () => proxy.accepted > accepted, 10_000);
    for (let n = 2; n <= 6; n++) await pub.pub('js.cut', { n });
    await eventually('all seven on B', () => sub.got.length === 7, 10_000);
    await sleep(200);
    assert.deepEqual(sub.got.map((d) => (d.d as { n: number }).n), range(0, 6), 'refilled and live, once each, in order');
    assert.deepEqual(seqs(sub.got), range(1, 7));
    assert.ok(B.gateway.stats.brokerRefilled >= 1, 'the cut message came from the stream');
    await Promise.all([pub.close(), sub.c.close()]);
  });
});

/**
 * A gap with the connection up: three JetStream servers; node B's server `b` reaches the other two only by
 * routes through TCP fault proxies (it dials theirs through one each, and advertises one to itself, so
 * that no route goes around). Resetting those routes
 * loses what the stream republished meanwhile on its way to B while B's own connection stays up: B learns
 * of the gap only from the next message's seq.
 */
describe('NATS JetStream mode: a gap in the numbering with the connection up', { timeout: 90_000 }, () => {
  const procs: ChildProcess[] = [];
  const dirs: string[] = [];
  const proxies: FaultProxy[] = [];
  const nodes: Node[] = [];

  const natsServer = async (name: string, args: string[]): Promise<number> => {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'wsgate-natsgap-'));
    dirs.push(dir);
    procs.push(spawn(requireBinary('nats'), ['-a', '127.0.0.1', '-p', String(port), '-js', '--store_dir', dir, '--cluster_name', 'gap', '--server_name', name, ...args], { stdio: 'ignore' }));
    await waitForPort(port);
    return port;
  };

  before(async () => {
    const [routeA, routeB, routeC] = [await freePort(), await freePort(), await freePort()];
    for (const r of [routeA, routeB, routeC]) proxies.push(await FaultProxy.start(r));
    const [toA, toB, toC] = proxies.map((p) => `nats://127.0.0.1:${p.port}`) as [string, string, string];
    const a = await natsServer('a', ['--cluster', `nats://127.0.0.1:${routeA}`, '--routes', `nats://127.0.0.1:${routeC}`]);
    await natsServer('c', ['--cluster', `nats://127.0.0.1:${routeC}`, '--routes', `nats://127.0.0.1:${routeA}`]);
    const b = await natsServer('b', ['--cluster', `nats://127.0.0.1:${routeB}`, '--cluster_advertise', toB.slice(7), '--routes', `${toA},${toC}`]);
    nodes.push(await startNode(`nats://127.0.0.1:${a}`, [...FLAGS, '--nats-jetstream-replicas', '3']), await startNode(`nats://127.0.0.1:${b}`, [...FLAGS, '--nats-jetstream-replicas', '3']));
    await eventually('JetStream ready on every node', () => nodes.every((x) => x.gateway.broker.ready()), 30_000);
    // The stream's leader away from b, so that publishing goes on while b is cut off.
    const nc = await connect({ servers: `127.0.0.1:${a}` });
    try {
      const jsm = await nc.jetstreamManager();
      await eventually('stream leader not on b', async () => {
        const leader = (await jsm.streams.info(STREAM)).cluster?.leader;
        if (leader === 'b') await nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${STREAM}`).catch(() => undefined);
        return leader !== undefined && leader !== 'b';
      }, 20_000);
    } finally {
      await nc.close();
    }
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.gateway.close()));
    for (const p of proxies) await p.close();
    for (const p of procs) {
      if (p.exitCode === null && p.signalCode === null) {
        const exited = new Promise((r) => p.once('exit', r));
        process.kill(p.pid as number, 'SIGKILL');
        await exited;
      }
    }
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('reads the missed messages from the stream when the next seq shows the gap', async () => {
    const [A, B] = nodes as [Node, Node];
    const sub = await collect(B.url, 'js.gap');
    const pub = await GatewayClient.connect(A.url);
    const publish = async (n: number) => {
      for (;;) {
        try {
          return await pub.pub('js.gap', n);
        } catch {
          await sleep(100); // a stream leader being elected
        }
      }
    };
    await publish(1);
    await eventually('first on B', () => sub.got.length === 1, 15_000);
    const routed = proxies.reduce((n, p) => n + p.accepted, 0);
    let cut = true;
    const reset = Promise.all(proxies.map((p) => p.reset(3000))).then(() => (cut = false));
    await sleep(100);
    for (let n = 2; n <= 4; n++) await publish(n); // stored, republished, lost on the way to B
    assert.ok(cut, 'stored while b was cut off');
    await reset;
    await eventually('routes back', () => proxies.reduce((n, p) => n + p.accepted, 0) >= routed + 2, 20_000);
    assert.ok(B.gateway.broker.ready(), "B's own connection never dropped");
    assert.deepEqual(sub.got.map((d) => d.d), [1]);
    // Interest travels again once the routes are back; then the next message shows the gap.
    let n = 5;
    await eventually('the next message reaches B', async () => {
      await publish(n++);
      return sub.got.length > 1;
    }, 20_000);
    await eventually('refilled', () => sub.got.length >= n - 1, 15_000);
    await sleep(200);
    assert.deepEqual(seqs(sub.got), range(1, sub.got.length), 'no gap, no duplicate');
    assert.deepEqual(sub.got.map((d) => d.d), range(1, sub.got.length));
    assert.ok(B.gateway.stats.brokerRefilled >= 3);
    await Promise.all([pub.close(), sub.c.close()]);
  });
});

describe('NATS JetStream mode: a 3-server NATS cluster with one server killed', { timeout: 90_000 }, () => {
  let cluster: NatsCluster;
  const nodes: Node[] = [];

  before(async () => {
    cluster = await NatsCluster.start(3);
    // Each gateway node dials a different server; the stream is replicated on all three.
    for (let i = 0; i < 2; i++) nodes.push(await startNode(cluster.url(i), [...FLAGS, '--nats-jetstream-replicas', '3']));
    await eventually('JetStream ready on every node', () => nodes.every((x) => x.gateway.broker.ready()), 30_000);
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.gateway.close()));
    await cluster.stop();
  });

  it('keeps numbering, delivery and recovery when a NATS server dies', async () => {
    const [A, B] = nodes as [Node, Node];
    const sub = await collect(B.url, 'js.cluster');
    const pub = await GatewayClient.connect(A.url);
    for (let i = 0; i < 20; i++) await pub.pub('js.cluster', i);
    await eventually('twenty', () => sub.got.length === 20);
    await cluster.kill(0); // the server node A is connected to
    const acked: number[] = [];
    for (let i = 20; acked.length < 20; i++) {
      try {
        acked.push((await pub.pub('js.cluster', i)).seq as number);
      } catch {
        await sleep(100);
      }
    }
    await eventually('all acked delivered', () => (sub.got.at(-1)?.s ?? 0) >= (acked.at(-1) as number), 30_000);
    assert.deepEqual(seqs(sub.got), range(1, sub.got.length));
    const resumed = await collect(A.url, 'js.cluster', { seq: 10, epoch: sub.reply.epoch as string });
    assert.equal(resumed.reply.recovered, true, JSON.stringify(resumed.reply));
    await eventually('replay', () => resumed.got.length === sub.got.length - 10);
    await Promise.all([pub.close(), sub.c.close(), resumed.c.close()]);
  });
});

describe('NATS JetStream mode without JetStream on the server', { timeout: 30_000 }, () => {
  let nats: BrokerServer;
  let node: Node;

  before(async () => {
    nats = await BrokerServer.start('nats'); // no -js
    node = await startNode(nats.url, FLAGS);
  });

  after(async () => {
    await node.gateway.close();
    await nats.stop();
  });

  it('answers unavailable, is not ready, and keeps serving', async () => {
    const ready = await fetch(`${http(node)}/readyz`);
    assert.equal(ready.status, 503);
    assert.equal(node.gateway.broker.ready(), false);
    const c = await GatewayClient.connect(node.url);
    await assert.rejects(c.pub('js.none', 1), (e: unknown) => e instanceof CommandError && e.code === 'unavailable');
    await assert.rejects(c.command({ op: 'history', topic: 'js.none' }), (e: unknown) => e instanceof CommandError && e.code === 'unavailable');
    const res = await fetch(`${http(node)}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic: 'js.none', data: 1 }) });
    assert.equal(res.status, 503);
    // A sub is still answered (from what the node knows) and the connection stays usable.
    const r = await c.sub('js.none');
    assert.equal(r.seq, 0);
    assert.equal((await c.ping()).op, 'ok');
    await c.close();
  });
});
