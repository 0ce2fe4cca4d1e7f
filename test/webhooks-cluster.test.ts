import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { GatewayClient } from '../src/client/gateway-client';
import type { Gateway } from '../src/server/gateway';
import { AppBackend, json } from './helpers/app-backend';
import { BrokerServer, eventually, sleep, startNode } from './helpers/brokers';

interface Event {
  name: string;
  topic?: string;
}

/** Occupancy is the cluster's: two nodes, one broker, each change announced once by the cluster. */
for (const kind of ['redis', 'nats'] as const) {
  describe(`webhooks across two nodes via ${kind}`, { timeout: 60_000 }, () => {
    let broker: BrokerServer;
    let app: AppBackend;
    const nodes: { gateway: Gateway; url: string }[] = [];
    const events = (name: string, topic: string) =>
      app.at('/hooks').flatMap((r) => (r.body as { events: Event[] }).events).filter((e) => e.name === name && e.topic === topic);

    before(async () => {
      broker = await BrokerServer.start(kind, null, null, true);
      app = await AppBackend.start();
      app.on('/hooks', (_r, res) => json(res, 200, {}));
      for (let i = 0; i < 2; i++) nodes.push(await startNode(broker.url, ['--webhook-url', `${app.url}/hooks`, '--webhook-secret', 's', '--webhook-delay', '400']));
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
