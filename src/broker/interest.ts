import type { Stats } from '../metrics/stats';
import type { InterestListener } from '../pubsub/hub';

/** The broker side of interest: subscribe to / drop one topic upstream. */
export interface InterestTarget {
  subscribeTopic(topic: string): void;
  unsubscribeTopic(topic: string): void;
}

/**
 * Topics this node holds at the broker. A topic whose last local subscriber left stays subscribed for
 * `lingerMs`, so churn (a client reconnecting, a page reload) costs no broker round trips.
 */
export class InterestTable implements InterestListener {
  private readonly held = new Set<string>();
  private readonly lingering = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly target: InterestTarget,
    private readonly lingerMs: number,
    private readonly stats: Stats,
  ) {}

  interestAdded(topic: string): void {
    const timer = this.lingering.get(topic);
    if (timer !== undefined) {
      clearTimeout(timer);
      this.lingering.delete(topic);
      return;
    }
    if (this.held.has(topic)) return;
    this.held.add(topic);
    this.stats.brokerSubscriptions = this.held.size;
    this.target.subscribeTopic(topic);
  }

  interestRemoved(topic: string): void {
    if (!this.held.has(topic) || this.lingering.has(topic)) return;
    if (this.lingerMs === 0) return this.drop(topic);
    this.lingering.set(
      topic,
      setTimeout(() => this.drop(topic), this.lingerMs).unref(),
    );
  }

  has(topic: string): boolean {
    return this.held.has(topic);
  }

  /** Every held topic, for restoring subscriptions after a reconnect. */
  topics(): IterableIterator<string> {
    return this.held.values();
  }

  close(): void {
    for (const timer of this.lingering.values()) clearTimeout(timer);
    this.lingering.clear();
    this.held.clear();
    this.stats.brokerSubscriptions = 0;
  }

  private drop(topic: string): void {
    this.lingering.delete(topic);
    this.held.delete(topic);
    this.stats.brokerSubscriptions = this.held.size;
    this.target.unsubscribeTopic(topic);
  }
}
