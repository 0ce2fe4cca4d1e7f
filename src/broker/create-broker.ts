import type { Config } from '../config/schema';
import type { Logger } from '../log';
import type { GatewayMetrics } from '../metrics/gateway-metrics';
import type { Stats } from '../metrics/stats';
import type { Hub } from '../pubsub/hub';
import type { Broker } from './broker';
import { MemoryBroker } from './memory-broker';
import { JetStreamBroker } from './jetstream-broker';
import { NatsBroker } from './nats-broker';
import { RedisBroker } from './redis-broker';

/** Picks the broker from config.broker ("memory", nats:// or tls:// (with JetStream if config.natsJetstream), redis:// or rediss://). */
export function createBroker(config: Config, hub: Hub, stats: Stats, metrics: GatewayMetrics, log: Logger): Broker {
  const url = config.broker;
  if (url === 'memory') return new MemoryBroker(hub, stats);
  if (url.startsWith('nats://') || url.startsWith('tls://')) {
    // One stored message more than the largest history: a topic's numbering marker (jetstream-store.ts).
    if (config.natsJetstream) return new JetStreamBroker(url, config, hub, stats, metrics, log, hub.maxHistorySize + 1);
    return new NatsBroker(url, config, hub, stats, metrics, log);
  }
  // Credentials, database and TLS (rediss://) are read from the URL by ioredis itself.
  if (url.startsWith('redis://') || url.startsWith('rediss://')) return new RedisBroker(url, config, hub, stats, metrics, log);
  throw new Error(`unsupported broker ${url}`);
}
