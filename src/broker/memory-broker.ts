import type { Payload } from '../protocol/payload';
import type { PublishSource, Stats } from '../metrics/stats';
import type { Hub } from '../pubsub/hub';
import type { Broker, PublishOutcome } from './broker';

/** The single-node broker: a publish goes straight to the local hub, synchronously. */
export class MemoryBroker implements Broker {
  readonly kind = 'memory';

  constructor(
    private readonly hub: Hub,
    private readonly stats: Stats,
  ) {}

  async start(): Promise<void> {
    this.stats.brokerUp = true;
  }

  ready(): boolean {
    return true;
  }

  publish(topic: string, payload: Payload, source: PublishSource, startedAt: number): PublishOutcome {
    return this.hub.deliver(topic, payload, source, startedAt);
  }

  async close(): Promise<void> {
    this.stats.brokerUp = false;
  }
}
