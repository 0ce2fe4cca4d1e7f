import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { GatewayClient } from '../src/client/gateway-client';
import type { Gateway } from '../src/server/gateway';
import { AppBackend, json, type Received } from './helpers/app-backend';
import { BrokerServer, eventually, sleep, startNode } from './helpers/brokers';
import { spawnGateway } from './helpers/gateway';

interface Event {
  name: string;
  topic?: string;
}

const SECRET = 's';
const DELAY_MS = 400;
const NODE_TTL_MS = 1000;
/** The flags of every node here: short node TTL, so that a killed node is reaped quickly. */
const hookFlags = (app: AppBackend) => ['--webhook-url', `${app.url}/hooks`, '--webhook-secret', SECRET, '--webhook-delay', String(DELAY_MS), '--node-ttl', String(NODE_TTL_MS)];

/** Checks the signature the way an application must (HMAC of the raw body), then returns the events. */
function verified(r: Received): Event[] {
  assert.equal(r.headers['x-wsgate-signature'], `sha256=${createHmac('sha256', SECRET).update(r.raw).digest('hex')}`, 'signature');
  return (r.body as { events: Event[] }).events;
}

/** Occupancy is the cluster's: two nodes, one broker, each change announced once by the cluster. */
for (const kind of ['redis', 'nats'] as const) {
  describe(`webhooks across two nodes via ${kind}`, { timeout: 60_000 }, () => {
    let broker: BrokerServer;
    let app: AppBackend;
    const nodes: { gateway: Gateway; url: string }[] = [];
    const events = (name: string, topic: string) =>
      app.at('/hooks').flatMap(verified).filter((e) => e.name === name && e.topic === topic);

    before(async () => {
      broker = await BrokerServer.start(kind, null, null, true);
      app = await AppBackend.start();
      app.on('/hooks', (_r, res) => json(res, 200, {}));
      for (let i = 0; i < 2; i++) nodes.push(await startNode(broker.url, hookFlags(app)));
      await eventually('brokers up', () => nodes.every((n) => n.gateway.broker.ready()));
    });
    after(async () => {
      await Promise.all(nodes.map((n) => n.gateway.close()));
      await app.stop();
      await broker.stop();
    });

    it('exactly one topic_occupied and one topic_vacated for a topic held on both nodes', async () => {
      const a = await GatewayClient.connect(nodes[0]!.url);
      const b = await GatewayClient.connect(nodes[1]!.url);
      await Promise.all([a.sub('shared'), b.sub('shared')]);
      await eventually('occupied', () => events('topic_occupied', 'shared').length >= 1);
      await a.unsub('shared');
      await sleep(600);
      assert.equal(events('topic_vacated', 'shared').length, 0, 'still held on node 2');
      await b.unsub('shared');
      await eventually('vacated', () => events('topic_vacated', 'shared').length >= 1);
      await sleep(800);
      assert.equal(events('topic_occupied', 'shared').length, 1);
      assert.equal(events('topic_vacated', 'shared').length, 1);
      await a.close();
      await b.close();
    });

    it('a topic left on one node and taken on the other within the delay sends nothing', async () => {
      const a = await GatewayClient.connect(nodes[0]!.url);
      const b = await GatewayClient.connect(nodes[1]!.url);
      await a.sub('handover');
      await eventually('occupied', () => events('topic_occupied', 'handover').length === 1);
      await a.unsub('handover');
      await sleep(100);
      await b.sub('handover');
      await sleep(900);
      assert.equal(events('topic_vacated', 'handover').length, 0);
      assert.equal(events('topic_occupied', 'handover').length, 1);
      await a.close();
      await b.close();
    });

    it('a node killed without goodbye: its topics left empty are vacated once by a survivor, shared ones not', async () => {
      const dying = await spawnGateway(['--broker', broker.url, ...hookFlags(app)]);
      try {
        await eventually('three nodes know each other', () => nodes.every((n) => n.gateway.bus.nodes === 3));
        const a = await GatewayClient.connect(`ws://127.0.0.1:${dying.port}/ws`);
        const b = await GatewayClient.connect(nodes[1]!.url);
        await Promise.all([a.sub('orphan'), a.sub('pending'), a.sub('kept'), b.sub('kept')]);
        await eventually('occupied', () => ['orphan', 'pending', 'kept'].every((t) => events('topic_occupied', t).length === 1));
        // 'pending': left, its vacate marker written, then the node dies before confirming it.
        await a.unsub('pending');
        await sleep(100);
        const killedAt = Date.now();
        dying.child.kill('SIGKILL');
        await dying.exited;
        // Bound: the node TTL, plus up to one heartbeat period (TTL/3) before a survivor's check, plus the delay.
        await eventually('vacated', () => events('topic_vacated', 'orphan').length >= 1 && events('topic_vacated', 'pending').length >= 1, NODE_TTL_MS + NODE_TTL_MS / 3 + DELAY_MS + 3000);
        const took = Date.now() - killedAt;
        assert.ok(took >= DELAY_MS, `not before the delay (${took} ms)`);
        await sleep(DELAY_MS + 800);
        assert.equal(events('topic_vacated', 'orphan').length, 1, 'once, by one of the two survivors');
        assert.equal(events('topic_vacated', 'pending').length, 1, 'its pending vacate taken over once');
        assert.equal(events('topic_vacated', 'kept').length, 0, 'still held on a surviving node');
        await b.unsub('kept');
        await eventually('kept vacated', () => events('topic_vacated', 'kept').length === 1);
        await b.close();
      } finally {
        await dying.stop();
      }
    });
  });
}

describe('webhooks via NATS without JetStream', { timeout: 30_000 }, () => {
  it('occupancy falls back to node-local (each node announces its own), with a warning', async () => {
    const broker = await BrokerServer.start('nats');
    const app = await AppBackend.start();
    app.on('/hooks', (_r, res) => json(res, 200, {}));
    const nodes = [await startNode(broker.url, ['--webhook-url', `${app.url}/hooks`, '--webhook-secret', 's', '--webhook-delay', '100'])];
    try {
      const a = await GatewayClient.connect(nodes[0]!.url);
      await a.sub('solo');
      await eventually('occupied', () => app.at('/hooks').some((r) => (r.body as { events: Event[] }).events.some((e) => e.name === 'topic_occupied' && e.topic === 'solo')));
      await a.close();
      await eventually('vacated', () => app.at('/hooks').some((r) => (r.body as { events: Event[] }).events.some((e) => e.name === 'topic_vacated' && e.topic === 'solo')));
    } finally {
      await Promise.all(nodes.map((n) => n.gateway.close()));
      await app.stop();
      await broker.stop();
    }
  });
});
