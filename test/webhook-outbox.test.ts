import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { type NatsConnection, connect } from 'nats';
import { GatewayClient } from '../src/client/gateway-client';
import type { Gateway } from '../src/server/gateway';
import { NatsLedger } from '../src/hooks/nats-ledger';
import { AppBackend, json } from './helpers/app-backend';
import { BrokerServer, eventually, sleep, startNode } from './helpers/brokers';
import { type ChildGateway, spawnGateway } from './helpers/gateway';

interface Event {
  name: string;
  topic?: string;
  id: string;
  decided_ms?: number;
}

const DELAY_MS = 300;
const NODE_TTL_MS = 1000;
/** A survivor declares a node gone TTL to TTL × 4/3 after its last heartbeat; then one ledger round trip and the 50-ms batch delay. */
const TAKEOVER_BOUND_MS = NODE_TTL_MS + NODE_TTL_MS / 3 + 1000;
const flags = (url: string) => ['--webhook-url', url, '--webhook-secret', 's', '--webhook-delay', String(DELAY_MS), '--node-ttl', String(NODE_TTL_MS), '--proxy-timeout', '30000'];

const TOPICS = ['acked', 'kept.a', 'kept.b'];

/** Entries in the ledger's outboxes: Redis keeps one hash per node, NATS an `out` list in each topic's key. */
async function outboxOf(kind: 'redis' | 'nats', client: Redis | NatsConnection): Promise<number> {
  if (kind === 'redis') {
    const redis = client as Redis;
    const keys = await redis.keys('wsgate:outbox:*');
    const lengths = await Promise.all(keys.map((k) => redis.hlen(k)));
    return lengths.reduce((a, b) => a + b, 0);
  }
  // Read by key (the topics of this test): a key lister that meets concurrent changes may end early.
  const kv = await (client as NatsConnection).jetstream().views.kv('wsgate_occupancy');
  let n = 0;
  for (const topic of TOPICS) {
    const e = await kv.get(Buffer.from(topic).toString('base64url'));
    if (e !== null && e.operation === 'PUT') n += e.json<{ out?: unknown[] }>().out?.length ?? 0;
  }
  return n;
}

/**
 * The ledger's outbox: an occupancy webhook decided by a node is kept in the ledger with the decision and
 * leaves only once acknowledged, so a node SIGKILLed with it unsent (its POST held by the application)
 * does not lose it: the node that reaps it sends the same event (same id) after the node TTL.
 */
for (const kind of ['redis', 'nats'] as const) describe(`occupancy webhooks survive a SIGKILLed node (${kind} ledger outbox)`, { timeout: 60_000 }, () => {
  let broker: BrokerServer;
  let app: AppBackend;
  let client: Redis | NatsConnection;
  let survivor: { gateway: Gateway; url: string };
  let dying: ChildGateway | null = null;
  const events = (path: string): Event[] => app.at(path).flatMap((r) => (r.body as { events: Event[] }).events);
  const outboxes = () => outboxOf(kind, client);

  before(async () => {
    broker = await BrokerServer.start(kind, null, null, true);
    app = await AppBackend.start();
    app.on('/hooks/live', (_r, res) => json(res, 200, {}));
    // The dying node's POSTs are held: never answered, so its events are decided but never acknowledged.
    app.on('/hooks/dying', () => undefined);
    client = kind === 'redis' ? new Redis(broker.url) : await connect({ servers: broker.url });
    survivor = await startNode(broker.url, flags(`${app.url}/hooks/live`));
  });
  after(async () => {
    await dying?.stop();
    await survivor.gateway.close();
    if (kind === 'redis') (client as Redis).disconnect();
    else await (client as NatsConnection).close();
    await app.stop();
    await broker.stop();
  });

  it('an acknowledged event leaves the outbox', async () => {
    const c = await GatewayClient.connect(survivor.url);
    await c.sub('acked');
    await eventually('occupied', () => events('/hooks/live').some((e) => e.name === 'topic_occupied' && e.topic === 'acked'));
    const e = events('/hooks/live').find((x) => x.topic === 'acked') as Event;
    assert.ok(typeof e.decided_ms === 'number' && Math.abs(e.decided_ms - Date.now()) < 10_000, `decided_ms ${e.decided_ms}`);
    await eventually('outbox emptied after the 2xx', async () => (await outboxes()) === 0);
    await c.close();
    await eventually('vacated', () => events('/hooks/live').some((x) => x.name === 'topic_vacated' && x.topic === 'acked'));
    await eventually('outbox emptied again', async () => (await outboxes()) === 0);
  });

  it('a node SIGKILLed with its webhooks unsent: the survivor sends the same events (same ids) after the node TTL', async (t) => {
    const node = await spawnGateway(['--broker', broker.url, ...flags(`${app.url}/hooks/dying`)]);
    dying = node;
    await eventually('two nodes know each other', () => survivor.gateway.bus.nodes === 2);
    const c = await GatewayClient.connect(`ws://127.0.0.1:${node.port}/ws`);
    await Promise.all([c.sub('kept.a'), c.sub('kept.b')]);
    await eventually('the dying node posted its occupied events (held)', () => events('/hooks/dying').length >= 2);
    // 'kept.b' is left: its vacate is decided after the delay and queued behind the held POST.
    await c.unsub('kept.b');
    await eventually('three events in the outbox', async () => (await outboxes()) === 3, DELAY_MS + 3000);
    const held = events('/hooks/dying');
    const killedAt = Date.now();
    node.child.kill('SIGKILL');
    await node.exited;
    c.close().catch(() => undefined);

    const resent = (name: string, topic: string) => events('/hooks/live').find((e) => e.name === name && e.topic === topic);
    await eventually('taken over', () => resent('topic_vacated', 'kept.b') !== undefined, TAKEOVER_BOUND_MS + 2000);
    const took = Date.now() - killedAt;
    assert.ok(took <= TAKEOVER_BOUND_MS, `sent ${took} ms after the SIGKILL (bound ${TAKEOVER_BOUND_MS} ms)`);
    t.diagnostic(`${kind}: the dead node's events sent by the survivor ${took} ms after the SIGKILL (node TTL ${NODE_TTL_MS} ms)`);
    for (const h of held) assert.equal(resent(h.name, h.topic as string)?.id, h.id, `${h.name} ${h.topic}: the same event id`);
    const vacatedB = resent('topic_vacated', 'kept.b') as Event;
    assert.ok(vacatedB.id !== undefined && (vacatedB.decided_ms as number) >= (held[0]?.decided_ms as number), 'decided after the occupied events');
    // 'kept.a' was still held by the dead node: the reap vacates it (a new event, decided by the survivor).
    await eventually('kept.a vacated', () => resent('topic_vacated', 'kept.a') !== undefined, DELAY_MS + 3000);
    await eventually('outboxes emptied', async () => (await outboxes()) === 0);
    await sleep(DELAY_MS + 500);
    const live = events('/hooks/live').filter((e) => e.topic?.startsWith('kept.'));
    const order = live.map((e) => `${e.name} ${e.topic}`);
    assert.deepEqual([...order].sort(), ['topic_occupied kept.a', 'topic_occupied kept.b', 'topic_vacated kept.a', 'topic_vacated kept.b'], `each once: ${order}`);
    assert.ok(order.indexOf('topic_vacated kept.b') > order.indexOf('topic_occupied kept.b'), `in decided order: ${order}`);
    assert.equal(order[3], 'topic_vacated kept.a', `the reap's vacate last: ${order}`);
    assert.equal(survivor.gateway.stats.webhookTakenOver, 3);
  });

  if (kind === 'nats')
    it('bounded: a topic key keeps at most its limit of entries (counted), and entries past their age go at the next write', async () => {
      // The ledger itself on the real KV bucket, with small limits: 2 entries, 400 ms.
      const nc = client as NatsConnection;
      const kv = await nc.jetstream().views.kv('wsgate_outbox_bound');
      let full = 0;
      const ledger = new NatsLedger(kv, 'n1', async () => undefined, () => true, { max: 2, ttlMs: 400 }, () => full++);
      const entries = async () => (await kv.get(Buffer.from('b.t').toString('base64url')))?.json<{ out?: { id: string }[] }>().out ?? [];
      const cycle = async () => {
        assert.notEqual(await ledger.occupy('b.t'), false);
        assert.equal(await ledger.vacate('b.t'), true);
        assert.notEqual(await ledger.confirmVacated('b.t'), false);
      };
      await cycle();
      await cycle();
      assert.equal((await entries()).length, 2, 'four decided, two kept');
      assert.equal(full, 2);
      await sleep(500);
      assert.notEqual(await ledger.occupy('b.t'), false);
      const left = await entries();
      assert.equal(left.length, 1, 'the aged entries gone, the new one kept');
      ledger.delivered((left[0] as { id: string }).id, 'b.t');
      await eventually('delivered: the key holds no entry', async () => (await entries()).length === 0);
    });
  else it('bounded: a full outbox keeps no more (counted), and it expires', async () => {
    const node = await startNode(broker.url, [...flags(`${app.url}/hooks/dying`), '--webhook-max-queue', '2']);
    try {
      const c = await GatewayClient.connect(node.url);
      for (const t of ['full.1', 'full.2', 'full.3', 'full.4']) await c.sub(t);
      await eventually('two kept, two counted', () => node.gateway.stats.webhookOutboxFull === 2);
      const key = `wsgate:outbox:${node.gateway.bus.nodeId}`;
      assert.equal(await (client as Redis).hlen(key), 2);
      const ttl = await (client as Redis).pttl(key);
      assert.ok(ttl > 3_500_000 && ttl <= 3_600_000, `TTL ${ttl} ms`);
      await c.close();
    } finally {
      await node.gateway.close();
    }
  });
});
