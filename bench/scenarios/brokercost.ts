import Redis from 'ioredis';
import { GatewayClient } from '../../src/client/gateway-client';
import { BrokerKind, BrokerServer } from '../lib/brokers';
import { cpuSeconds, pinning, rssBytes } from '../lib/procs';
import { SERVERS, startServer, stopServer } from '../lib/servers';
import { Scenario } from './types';
import { perServer, result, row, sleep, waitReady } from './common';

/**
 * What one node costs the broker (issue 5): the connections it holds, broker memory per topic the node
 * has interest in, and broker CPU per publish. Real nats-server / redis-server, one wsgate node, one
 * client subscribing to many topics through it, then publishing to one of them.
 */
interface BrokerCostOutcome {
  connections: number;
  subscriptions: number;
  rssPerTopicBytes: number;
  /** Redis only: used_memory growth per topic (allocator-exact, unlike RSS). */
  usedMemoryPerTopicBytes: number | null;
  cpuPerPublishMicros: number;
}

const VARIANTS = { NATS: 'nats', Redis: 'redis', 'NATS JetStream': 'nats' } as const satisfies Record<string, BrokerKind>;
type Variant = keyof typeof VARIANTS;

/** What the broker reports about itself: connections, subscriptions (topics + Redis reply channel), memory. */
async function brokerState(broker: BrokerServer, admin: Redis | null): Promise<{ connections: number; subscriptions: number; usedMemory: number | null }> {
  if (admin === null) {
    const varz = (await (await fetch(`http://127.0.0.1:${broker.monitorPort}/varz`)).json()) as { connections: number; subscriptions: number };
    return { connections: varz.connections, subscriptions: varz.subscriptions, usedMemory: null };
  }
  const channels = (await admin.call('PUBSUB', 'CHANNELS', 'wsgate:*')) as string[];
  const clients = String(await admin.call('CLIENT', 'LIST')).trim().split('\n').length - 1; // minus this admin connection
  const info = String(await admin.call('INFO', 'memory'));
  const used = Number(/used_memory:(\d+)/.exec(info)?.[1] ?? NaN);
  return { connections: clients, subscriptions: channels.length, usedMemory: used };
}

export const brokercost: Scenario = {
  name: 'brokercost',
  title: 'What a node costs the broker: connections, memory per topic of interest, CPU per publish',
  inDefault: true,
  async run(ctx) {
    const q = ctx.opts.quick;
    const p = { topics: q ? 200 : 10_000, publishes: q ? 500 : 20_000, window: 200, settleMs: q ? 300 : 2000 };
    if (!ctx.opts.servers.includes('wsgate')) return result('brokercost', this.title, p, {}, [], ['Skipped: wsgate is not among the selected (or built) servers.']);
    const core = pinning()?.server ?? null;
    const outcomes = await perServer<BrokerCostOutcome, Variant>(ctx, Object.keys(VARIANTS) as Variant[], async (variant) => {
      const jetstream = variant === 'NATS JetStream';
      const broker = await BrokerServer.start(VARIANTS[variant], core, null, jetstream);
      const admin = broker.kind === 'redis' ? new Redis(broker.url, { lazyConnect: true }) : null;
      const node = await startServer(SERVERS.wsgate, ['--broker', broker.url, '--max-topics-per-conn', String(p.topics), ...(jetstream ? ['--nats-jetstream'] : [])]);
      let client: GatewayClient | null = null;
      try {
        await admin?.connect();
        await waitReady(node.port);
        await sleep(p.settleMs);
        const before = await brokerState(broker, admin);
        const rssBefore = rssBytes(broker.pid as number);
        client = await GatewayClient.connect(`ws://127.0.0.1:${node.port}/ws`);
        const c = client;
        for (let i = 0; i < p.topics; i += p.window) {
          await Promise.all(Array.from({ length: Math.min(p.window, p.topics - i) }, (_, k) => c.sub(`cost.${i + k}`)));
        }
        for (let tries = 0; (await brokerState(broker, admin)).subscriptions < before.subscriptions + p.topics; tries++) {
          if (tries === 600) throw new Error('broker did not report every topic subscribed within 60 s');
          await sleep(100);
        }
        await sleep(p.settleMs);
        const after = await brokerState(broker, admin);
        const rssAfter = rssBytes(broker.pid as number);

        const cpu0 = cpuSeconds(broker.pid as number);
        for (let i = 0; i < p.publishes; i += p.window) {
          await Promise.all(Array.from({ length: Math.min(p.window, p.publishes - i) }, (_, k) => c.pub('cost.0', i + k)));
        }
        const cpu = cpuSeconds(broker.pid as number) - cpu0;
        ctx.log(`    ${after.subscriptions - before.subscriptions} subscriptions, ${Math.round((rssAfter - rssBefore) / p.topics)} B RSS per topic, ${((cpu / p.publishes) * 1e6).toFixed(1)} µs broker CPU per publish`);
        return {
          connections: before.connections,
          subscriptions: after.subscriptions - before.subscriptions,
          rssPerTopicBytes: Math.round((rssAfter - rssBefore) / p.topics),
          usedMemoryPerTopicBytes: after.usedMemory === null || before.usedMemory === null ? null : Math.round((after.usedMemory - before.usedMemory) / p.topics),
          cpuPerPublishMicros: Math.round((cpu / p.publishes) * 1e7) / 10,
        };
      } finally {
        await client?.close();
        await stopServer(node);
        admin?.disconnect();
        await broker.stop();
      }
    });
    return result('brokercost', this.title, p, outcomes, [
      row(outcomes, 'broker connections held by the node', '', 'lower', (r) => r.connections),
      row(outcomes, `broker subscriptions for ${p.topics} topics`, '', 'lower', (r) => r.subscriptions),
      row(outcomes, 'broker RSS per topic of interest', 'B', 'lower', (r) => r.rssPerTopicBytes),
      row(outcomes, 'Redis used_memory per topic of interest', 'B', 'lower', (r) => r.usedMemoryPerTopicBytes),
      row(outcomes, 'broker CPU per publish (one subscribing node)', 'µs', 'lower', (r) => r.cpuPerPublishMicros),
    ], [
      'One wsgate node, one client holding every topic (however many local subscribers a topic has, the node holds one broker subscription for it). NATS connections and subscriptions from /varz; Redis from CLIENT LIST, PUBSUB CHANNELS and INFO memory.',
      `Broker CPU per publish: ${p.publishes} socket publishes to one topic, ${p.window} in flight, through the node (NATS: one PUB, no echo; Redis: one EVALSHA running HINCRBY + XADD + PUBLISH, and the PUBLISH back to the node; NATS JetStream: one stored message per group of the publishes the node holds for the topic, and its republished copy back to the node).`,
      'NATS JetStream: a subscribe to a topic with no stored message stores a marker (its epoch), so the memory per topic includes one stored message per topic; the stream is file-backed (its page cache is not in the RSS).',
    ]);
  },
};
