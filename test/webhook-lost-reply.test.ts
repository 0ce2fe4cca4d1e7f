import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { type NatsConnection, connect } from 'nats';
import { GatewayClient } from '../src/client/gateway-client';
import type { Gateway } from '../src/server/gateway';
import { AppBackend, json } from './helpers/app-backend';
import { BrokerServer, eventually, sleep, startNode } from './helpers/brokers';
import { FaultProxy } from './helpers/fault-proxy';

interface Event {
  name: string;
  topic?: string;
  id: string;
}

interface Entry {
  id: string;
  change: string;
}

const DELAY_MS = 300;
const flags = (url: string) => ['--webhook-url', url, '--webhook-secret', 's', '--webhook-delay', String(DELAY_MS), '--node-ttl', '1000'];

/** This node's entries in the ledger's outbox: Redis keeps one hash per node, NATS an `out` list in the topic's key. */
async function entriesOf(kind: 'redis' | 'nats', client: Redis | NatsConnection, node: string, topic: string): Promise<Entry[]> {
  if (kind === 'redis') {
    const all = await (client as Redis).hgetall(`wsgate:outbox:${node}`);
    // Value: change, decided ms, topic.
    return Object.entries(all)
      .map(([id, v]) => ({ id, change: v.split('\n')[0] as string, topic: v.split('\n').slice(2).join('\n') }))
      .filter((e) => e.topic === topic);
  }
  const kv = await (client as NatsConnection).jetstream().views.kv('wsgate_occupancy');
  const e = await kv.get(Buffer.from(topic).toString('base64url'));
  if (e === null || e.operation !== 'PUT') return [];
  const out = e.json<{ out?: { id: string; node: string; c: string }[] }>().out ?? [];
  return out.filter((x) => x.node === node).map((x) => ({ id: x.id, change: x.c }));
}

/**
 * An ambiguous outcome of a deciding call: the ledger applies the change (and keeps the event in this
 * node's outbox) but the reply is lost with the connection. The node sees an error and settles the topic as
 * it is now (already a member: nothing to announce); the event the ledger decided is sent once the ledger is
 * reachable again, from the node's own outbox, with the id the ledger kept.
 */
for (const kind of ['redis', 'nats'] as const) describe(`an occupancy event whose decision reply was lost is sent once the link is back (${kind})`, { timeout: 60_000 }, () => {
  let broker: BrokerServer;
  let proxy: FaultProxy;
  let app: AppBackend;
  let client: Redis | NatsConnection;
  let node: { gateway: Gateway; url: string };
  const events = (): Event[] => app.at('/hooks').flatMap((r) => (r.body as { events: Event[] }).events);
  const named = (name: string, topic: string) => events().filter((e) => e.name === name && e.topic === topic);

  before(async () => {
    broker = await BrokerServer.start(kind, null, null, true);
    proxy = await FaultProxy.start(broker.port);
    app = await AppBackend.start();
    app.on('/hooks', (_r, res) => json(res, 200, {}));
    client = kind === 'redis' ? new Redis(broker.url) : await connect({ servers: broker.url });
    node = await startNode(broker.url.replace(`:${broker.port}`, `:${proxy.port}`), flags(`${app.url}/hooks`));
  });
  after(async () => {
    await node.gateway.close();
    if (kind === 'redis') (client as Redis).disconnect();
    else await (client as NatsConnection).close();
    await proxy.close();
    await app.stop();
    await broker.stop();
  });

  it('topic_occupied decided while the replies are swallowed, then the connection reset: delivered with its id', async () => {
    const nodeId = node.gateway.bus.nodeId;
    // A warm-up topic: the ledger path works end to end before the fault.
    const c = await GatewayClient.connect(node.url);
    await c.sub('warm');
    await eventually('warm occupied', () => named('topic_occupied', 'warm').length === 1);

    // NATS: the KV reads go through; the replies are swallowed from the write's acknowledgement on.
    proxy.set(kind === 'redis' ? { kind: 'swallow' } : { kind: 'swallow', from: /"stream":"KV_wsgate_occupancy"/ });
    const sub = c.sub('lost.reply').catch(() => undefined);
    // The ledger applied the occupy and kept the event in this node's outbox; its reply never arrives.
    await eventually('decided in the ledger', async () => (await entriesOf(kind, client, nodeId, 'lost.reply')).length === 1);
    const [kept] = await entriesOf(kind, client, nodeId, 'lost.reply');
    assert.equal(kept?.change, 'occupied');
    assert.equal(named('topic_occupied', 'lost.reply').length, 0, 'not sent yet: the reply is lost');
    await proxy.reset(300);
    proxy.set({ kind: 'pass' });
    await sub;

    await eventually('the decided event is sent once the link is back', () => named('topic_occupied', 'lost.reply').length > 0, 15_000);
    assert.equal(named('topic_occupied', 'lost.reply')[0]?.id, kept?.id, 'the id the ledger kept');
    assert.ok(node.gateway.stats.webhookResent >= 1, `resent ${node.gateway.stats.webhookResent}`);
    await eventually('the outbox entry removed once acknowledged', async () => (await entriesOf(kind, client, nodeId, 'lost.reply')).length === 0);
    await sleep(1500);
    assert.equal(named('topic_occupied', 'lost.reply').length, 1, 'sent once');
    assert.equal(named('topic_occupied', 'warm').length, 1, 'an event already sent is not sent again');
    await c.close();
  });

  it('an occupy that never reached the ledger, still unanswered when the node re-asserts its topics: announced, once', async () => {
    const c = await GatewayClient.connect(node.url);
    proxy.set({ kind: 'blackhole' });
    const sub = c.sub('lost.request').catch(() => undefined);
    await sleep(200);
    // NATS: the request waits for its timeout while the node reconnects and re-asserts; Redis rejects it at the reset.
    await proxy.reset(300);
    proxy.set({ kind: 'pass' });
    await sub;
    await eventually('occupied once the ledger is back', () => named('topic_occupied', 'lost.request').length > 0, 15_000);
    await sleep(1500);
    assert.equal(named('topic_occupied', 'lost.request').length, 1, 'sent once');
    await c.close();
  });
});
