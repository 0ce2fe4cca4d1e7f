import type { PublishOutcome } from '../broker/broker';
import type { Stats } from '../metrics/stats';
import { GatewayError } from '../protocol/codes';

/**
 * Publishes carrying an `idempotencyKey`: a repeat of a key on the same topic within the window publishes
 * nothing and answers the first publish's seq. A first publish that fails is forgotten (a retry publishes).
 */
export interface Idempotency {
  /** Runs `publish` unless `key` was seen on `topic` within the window. */
  once(topic: string, key: string, publish: () => PublishOutcome | Promise<PublishOutcome>): PublishOutcome | Promise<PublishOutcome>;
  close(): Promise<void>;
}

/** A key on a topic; '\n' cannot occur in a topic, so topic and key cannot run into each other. */
export const scopedKey = (topic: string, key: string): string => `${topic}\n${key}`;

interface Seen {
  readonly expires: number;
  outcome: number | Promise<PublishOutcome>;
}

/**
 * Node-local keys (memory and NATS brokers): a Map in insertion order, which with one fixed window is
 * expiry order, so expired keys are dropped from the front. At most `maxKeys`: beyond, the oldest are
 * forgotten before their window ends (counted).
 */
export class LocalIdempotency implements Idempotency {
  private readonly seen = new Map<string, Seen>();

  constructor(
    private readonly windowMs: number,
    private readonly maxKeys: number,
    private readonly stats: Stats,
  ) {}

  once(topic: string, key: string, publish: () => PublishOutcome | Promise<PublishOutcome>): PublishOutcome | Promise<PublishOutcome> {
    const now = Date.now();
    this.expire(now);
    const k = scopedKey(topic, key);
    const hit = this.seen.get(k);
    if (hit !== undefined) {
      this.stats.idempotentRepeats++;
      return hit.outcome;
    }
    const outcome = publish();
    if (outcome instanceof GatewayError) return outcome;
    const seen: Seen = { expires: now + this.windowMs, outcome };
    this.seen.set(k, seen);
    if (this.seen.size > this.maxKeys) {
      for (const oldest of this.seen.keys()) {
        this.seen.delete(oldest);
        this.stats.idempotencyEvicted++;
        break;
      }
    }
    if (outcome instanceof Promise) {
      void outcome.then(
        (o) => (typeof o === 'number' ? (seen.outcome = o) : this.forget(k, seen)),
        () => this.forget(k, seen),
      );
    }
    this.stats.idempotencyKeys = this.seen.size;
    return outcome;
  }

  private forget(k: string, seen: Seen): void {
    if (this.seen.get(k) === seen) this.seen.delete(k);
    this.stats.idempotencyKeys = this.seen.size;
  }

  private expire(now: number): void {
    for (const [k, s] of this.seen) {
      if (s.expires > now) break;
      this.seen.delete(k);
    }
    this.stats.idempotencyKeys = this.seen.size;
  }

  async close(): Promise<void> {
    this.seen.clear();
  }
}
