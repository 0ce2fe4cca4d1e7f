import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Redis from 'ioredis';
import { CommandError, type Delivery, GatewayClient } from '../src/client/gateway-client';
import type { Gateway } from '../src/server/gateway';
import { BrokerServer, eventually, freePort, sleep, startNode, waitForPort } from './helpers/brokers';

const readyz = async (port: number): Promise<number> => (await fetch(`http://127.0.0.1:${port}/readyz`)).status;
const portOf = (url: string): number => Number(new URL(url).port);

/** Publishes `{n}` every few ms until stopped (bounded by `max`), recording each outcome. */
function publisher(c: GatewayClient, topic: string, max: number) {
  const state = { ok: 0, unavailable: 0, other: 0, stop: false, done: Promise.resolve() };
  state.done = (async () => {
    for (let n = 0; n < max && !state.stop; n++) {
      try {
        await c.pub(topic, { n });
        state.ok++;
      } catch (e) {
        if (e instanceof CommandError && e.code === 'unavailable') state.unavailable++;
        else state.other++;
      }
      await sleep(3);
    }
  })();
  return state;
}

/** Deliveries carry increasing `n` (order) with none twice (exactly once). */
function assertOrderedOnce(got: Delivery[]): void {
  const ns = got.map((d) => (d.d as { n: number }).n);
  for (let i = 1; i < ns.length; i++) assert.ok((ns[i] as number) > (ns[i - 1] as number), `in order, once: ${ns[i - 1]} then ${ns[i]}`);
}

for (const kind of ['nats', 'redis'] as const) {
  describe(`broker faults via ${kind}`, { timeout: 60_000 }, () => {
    let broker: BrokerServer;
    const nodes: { gateway: Gateway; url: string }[] = [];

    before(async () => {
      broker = await BrokerServer.start(kind);
      for (let i = 0; i < 2; i++) nodes.push(await startNode(broker.url));
      await eventually('brokers up', () => nodes.every((n) => n.gateway.broker.ready()));
    });

    after(async () => {
      await Promise.all(nodes.map((n) => n.gateway.close()));
      await broker.stop();
    });

    it('survives the broker being killed and restarted mid-stream', async () => {
      const [a, b] = nodes as [{ gateway: Gateway; url: string }, { gateway: Gateway; url: string }];
      const sub = await GatewayClient.connect(b.url);
      const got: Delivery[] = [];
      sub.onDelivery = (d) => got.push(d);
      await sub.sub('fault');
      const local = await GatewayClient.connect(a.url);
      const gotLocal: Delivery[] = [];
      local.onDelivery = (d) => gotLocal.push(d);
      await local.sub('fault');
      const pub = publisher(await GatewayClient.connect(a.url), 'fault', 5000);
      await eventually('traffic flowing', () => got.length > 20);

      await broker.kill();
      await eventually('readyz 503 on both nodes', async () => (await readyz(portOf(a.url))) === 503 && (await readyz(portOf(b.url))) === 503);
      assert.equal(a.gateway.stats.brokerUp, false);
      if (kind === 'nats') {
        const failuresAtDown = a.gateway.stats.brokerFailures;
        // Local fan-out goes on; every message that could not reach the other nodes is counted.
        const localAtDown = gotLocal.length;
        const okAtDown = pub.ok;
        await eventually('local deliveries while the broker is down', () => gotLocal.length > localAtDown + 20);
        assert.equal(pub.unavailable, 0);
        assert.ok(a.gateway.stats.brokerFailures - failuresAtDown >= Math.min(pub.ok - okAtDown, gotLocal.length - localAtDown) - 1, 'not forwarded, counted');
      } else {
        // Redis numbers every message: without it publishes are refused, and counted.
        await eventually('refused publishes', () => pub.unavailable > 3);
        assert.ok(a.gateway.stats.brokerFailures >= pub.unavailable, 'every refused publish counted');
        // An HTTP batch answers per item, so a backend knows which items to send again.
        const res = await fetch(`http://127.0.0.1:${portOf(a.url)}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[{"topic":"fault","data":1},{"topic":"other","data":2}]' });
        assert.equal(res.status, 503);
        const body = (await res.json()) as { code: string; results: { topic: string; code?: string }[] };
        assert.equal(body.code, 'unavailable');
        assert.deepEqual(body.results.map((r) => [r.topic, r.code]), [['fault', 'unavailable'], ['other', 'unavailable']]);
      }
      // The node keeps serving its own clients.
      assert.equal((await fetch(`http://127.0.0.1:${portOf(a.url)}/healthz`)).status, 200);
      await local.ping();
      await local.sub('local.only');
      const late = await GatewayClient.connect(b.url);
      await late.ping();

      await broker.spawn();
      await eventually('ready again', async () => (await readyz(portOf(a.url))) === 200 && (await readyz(portOf(b.url))) === 200, 15_000);
      const before = got.length;
      const okBefore = pub.ok;
      await eventually('subscription restored: deliveries resume on the other node', () => got.length > before + 20 && pub.ok > okBefore + 20, 15_000);
      pub.stop = true;
      await pub.done;
      assert.equal(pub.other, 0);
      assertOrderedOnce(got);
      assertOrderedOnce(gotLocal);
      // NATS: every accepted publish reached the publishing node's own subscriber, outage or not. (Redis
      // without persistence loses what it had not yet sent when it was killed.)
      if (kind === 'nats') assert.equal(gotLocal.length, pub.ok);
      await Promise.all([sub.close(), local.close(), late.close()]);
    });

    if (kind === 'redis') {
      it('refills from the stream what a node missed while its subscriber connection was away', async () => {
        const [a, b] = nodes as [{ gateway: Gateway; url: string }, { gateway: Gateway; url: string }];
        const sub = await GatewayClient.connect(b.url);
        const got: Delivery[] = [];
        sub.onDelivery = (d) => got.push(d);
        await sub.sub('refill');
        const pub = publisher(await GatewayClient.connect(a.url), 'refill', 3000);
        await eventually('traffic flowing', () => got.length > 20);
        const refilledBefore = b.gateway.stats.brokerRefilled;
        // Cuts only the subscriber connections: publishes keep being numbered and stored meanwhile.
        const admin = new Redis(broker.url, { lazyConnect: true });
        await admin.connect();
        try {
          for (let i = 0; i < 3; i++) {
            assert.equal(Number(await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')), 2, 'both nodes had a subscriber connection');
            await eventually('both subscriber connections back', async () => String(await admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub')).trim().split('\n').length === 2);
            const at = got.length;
            await eventually('deliveries go on', () => got.length > at + 20);
          }
        } finally {
          admin.disconnect();
        }
        pub.stop = true;
        await pub.done;
        assert.equal(pub.unavailable + pub.other, 0);
        await eventually('every publish delivered', () => got.length === pub.ok);
        // Exactly once, in order, and no gap: the cluster numbering runs on through every cut.
        got.forEach((d, i) => assert.equal(d.s, (got[0] as Delivery).s + i, `contiguous at ${i}`));
        assertOrderedOnce(got);
        assert.ok(b.gateway.stats.brokerRefilled > refilledBefore, 'messages refilled from the stream');
        await sub.close();
      });
    }
  });
}

describe('a node drained with SIGTERM while others continue', { timeout: 60_000 }, () => {
  let broker: BrokerServer;
  let child: ChildProcess | null = null;
  const nodes: { gateway: Gateway; url: string }[] = [];

  before(async () => {
    broker = await BrokerServer.start('nats');
    for (let i = 0; i < 2; i++) nodes.push(await startNode(broker.url));
  });

  after(async () => {
    if (child !== null && child.exitCode === null) child.kill('SIGKILL');
    await Promise.all(nodes.map((n) => n.gateway.close()));
    await broker.stop();
  });

  it('closes its clients with 1012 and exits; the other nodes keep delivering', async () => {
    const port = await freePort();
    const main = join(__dirname, '..', 'src', 'cli', 'main.js');
    const args = ['serve', '--host', '127.0.0.1', '--port', String(port), '--broker', broker.url, '--client-publish', '--api-insecure', '--log-level', 'warn', '--drain-window', '300', '--drain-timeout', '5000'];
    const proc = spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
    child = proc;
    await waitForPort(port);
    await eventually('drained node ready', async () => (await readyz(port)) === 200);

    const url = (i: number) => (nodes[i] as { url: string }).url;
    const onDrained = await GatewayClient.connect(`ws://127.0.0.1:${port}/ws`);
    await onDrained.sub('drain');
    const closed = new Promise<number>((r) => onDrained.ws.once('close', (code: number) => r(code)));
    const subs = [await GatewayClient.connect(url(0)), await GatewayClient.connect(url(1))];
    const got: Delivery[][] = [[], []];
    subs.forEach((s, i) => {
      s.onDelivery = (d) => (got[i] as Delivery[]).push(d);
    });
    await Promise.all(subs.map((s) => s.sub('drain')));
    const pub = publisher(await GatewayClient.connect(url(0)), 'drain', 3000);
    await eventually('traffic', () => got.every((g) => g.length > 10));

    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    proc.kill('SIGTERM');
    assert.equal(await closed, 1012);
    assert.equal(await exited, 0);
    const mark = got.map((g) => g.length);
    await eventually('others continue', () => got.every((g, i) => g.length > (mark[i] as number) + 20));
    pub.stop = true;
    await pub.done;
    await eventually('all delivered', () => got.every((g) => g.length === pub.ok));
    for (const g of got) assertOrderedOnce(g);
    assert.equal(pub.unavailable + pub.other, 0);
    await Promise.all(subs.map((s) => s.close()));
  });
});
