import type { Config } from '../config/schema';
import type { Logger } from '../log';
import type { GatewayMetrics } from '../metrics/gateway-metrics';
import type { Stats } from '../metrics/stats';
import type { Hub } from '../pubsub/hub';
import type { Broker } from './broker';
import { MemoryBroker } from './memory-broker';

/** Picks the broker from config.broker ("memory", nats://…, redis://…). */
export function createBroker(config: Config, hub: Hub, stats: Stats, _metrics: GatewayMetrics, _log: Logger): Broker {
  if (config.broker === 'memory') return new MemoryBroker(hub, stats);
  throw new Error(`broker ${config.broker} is not available in this build`);
}
