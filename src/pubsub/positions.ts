import type { StreamPosition } from '../protocol/commands';

/** A topic's position after its state went away, and when it was set aside. */
interface Remembered extends StreamPosition {
  readonly at: number;
}

export interface PositionLimits {
  /** How long a position is kept after the topic's state went away. */
  readonly ttlMs: number;
  /** Topics remembered at most; the least recently retired go first (0: none). */
  readonly max: number;
}

/**
 * The (seq, epoch) of topics that have no state on the node any more (no subscriber, history expired),
 * so a quiet topic keeps its numbering and a client resuming from it loses nothing it could recover.
 * A Map in insertion order is the LRU: a retired topic is (re)inserted at the end, so the oldest are at
 * the front and both the size bound and the TTL evict from there. Each entry holds the topic and epoch
 * strings the state already had, so remembering copies no string.
 */
export class PositionMemory {
  private readonly entries = new Map<string, Remembered>();

  constructor(private readonly limits: PositionLimits) {}

  get size(): number {
    return this.entries.size;
  }

  remember(topic: string, seq: number, epoch: string, now: number): void {
    if (this.limits.max === 0) return;
    this.entries.delete(topic);
    this.entries.set(topic, { seq, epoch, at: now });
    if (this.entries.size > this.limits.max) this.entries.delete(this.entries.keys().next().value as string);
  }

  /** The position of `topic` if still remembered, handed back (the topic has a state again). */
  take(topic: string, now: number): StreamPosition | undefined {
    const p = this.entries.get(topic);
    if (p === undefined) return undefined;
    this.entries.delete(topic);
    return p.at + this.limits.ttlMs >= now ? p : undefined;
  }

  evictExpired(now: number): void {
    const cutoff = now - this.limits.ttlMs;
    for (const [topic, p] of this.entries) {
      if (p.at >= cutoff) return;
      this.entries.delete(topic);
    }
  }

  clear(): void {
    this.entries.clear();
  }
}
