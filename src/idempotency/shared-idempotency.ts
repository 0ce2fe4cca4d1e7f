import type { PublishOutcome } from '../broker/broker';
import type { Stats } from '../metrics/stats';
import { ErrorCode, GatewayError } from '../protocol/codes';
import { BUCKET, type BucketTableMemory, type Fingerprint as Key, bucketsFor, createBucketMemory, fingerprint, windowOf, withLock, withWindowLocked } from '../shared/bucket-table';
import { type Idempotency, scopedKey } from './idempotency';

// A slot is 4 Int32: the key's fingerprint (2 words, 0/0 = empty), state, expiry (s since the epoch);
// the first publish's seq is in `seqs`.
const WORDS = 4;
const FP_A = 0;
const FP_B = 1;
const STATE = 2;
const EXPIRES = 3;
const PENDING = 1;
const DONE = 2;
/** How often a repeat polls a key whose first publish is still being numbered on another worker. */
const POLL_MS = 2;
// Header cells.
const KEYS = 0;
const ORDER_LOCK = 1;
const ORDER_HEAD = 2;
const ORDER_LENGTH = 3;

/** The process's idempotency keys (workers mode, memory broker): header Int32 [keys held, order lock, order head, order length]. */
export interface IdempotencyMemory extends BucketTableMemory {
  /** Each slot's first-publish seq. */
  readonly seqs: SharedArrayBuffer;
  /** The keys in the order they came: [slot, fingerprint a, fingerprint b] per key, a ring of max-keys entries. */
  readonly order: SharedArrayBuffer;
}

/** Room for twice --idempotency-max-keys. */
export function createIdempotencyMemory(maxKeys: number): IdempotencyMemory {
  const buckets = bucketsFor(maxKeys);
  return { ...createBucketMemory(buckets, WORDS, 4), seqs: new SharedArrayBuffer(buckets * BUCKET * 8), order: new SharedArrayBuffer(maxKeys * 12) };
}

/**
 * Idempotency keys for every worker of one process (memory broker): a retried publish with the same key
 * is published once whichever worker it lands on. A fixed table in shared memory; a key (scoped to
 * its topic) is a 64-bit keyed fingerprint in a window of two buckets of 8 slots, each bucket under a
 * lock word. A key is PENDING while its first publish is numbered and DONE with that seq after; a
 * repeat of a pending key waits for it (polling every 2 ms). A first publish that fails is forgotten
 * (a retry publishes; a repeat that was waiting gets `unavailable`). Collision rules: two keys with
 * the same fingerprint are one key (2^-64 per pair). At most --idempotency-max-keys keys: beyond, the
 * oldest of the process is forgotten (its arrival order is a shared ring), as in the single-thread
 * store; a new key whose 16 slots all hold live keys takes the slot of the one expiring first. Both
 * are counted in wsgate_idempotency_evicted_total.
 */
export class SharedIdempotency implements Idempotency {
  private readonly slots: Int32Array;
  private readonly seqs: Float64Array;
  private readonly locks: Int32Array;
  private readonly header: Int32Array;
  private readonly order: Int32Array;
  private readonly maxKeys: number;
  private readonly mask: number;
  private readonly windowS: number;
  /** The slot claim() just took (read right after it, on this thread). */
  private claimed = -1;

  constructor(
    private readonly memory: IdempotencyMemory,
    windowMs: number,
    private readonly stats: Stats,
  ) {
    this.slots = new Int32Array(memory.slots);
    this.seqs = new Float64Array(memory.seqs);
    this.locks = new Int32Array(memory.locks);
    this.header = new Int32Array(memory.header);
    this.order = new Int32Array(memory.order);
    this.maxKeys = this.order.length / 3;
    this.mask = this.locks.length - 1;
    this.windowS = Math.ceil(windowMs / 1000);
  }

  once(topic: string, key: string, publish: () => PublishOutcome | Promise<PublishOutcome>): PublishOutcome | Promise<PublishOutcome> {
    const k = fingerprint(this.memory.seed, scopedKey(topic, key), this.mask);
    const now = this.seconds();
    const seen = this.claim(k, now);
    if (seen === null) this.evictOldest(this.remember(k));
    this.stats.idempotencyKeys = Atomics.load(this.header, KEYS);
    if (seen !== null) {
      this.stats.idempotentRepeats++;
      return seen;
    }
    const outcome = publish();
    if (outcome instanceof Promise) {
      return outcome.then(
        (o) => this.settle(k, o),
        (e: unknown) => {
          this.settle(k, unavailable());
          throw e;
        },
      );
    }
    return this.settle(k, outcome);
  }

  async close(): Promise<void> {}

  /** Null: the key is new, now PENDING for this caller; else the first publish's outcome (maybe still coming). */
  private claim(k: Key, now: number): PublishOutcome | Promise<PublishOutcome> | null {
    return this.locked(k.bucket, () => {
      const slot = this.find(k, now);
      if (slot >= 0) return this.outcomeOf(k, slot);
      const free = this.room(k, now);
      const i = free * WORDS;
      this.slots[i + FP_A] = k.a;
      this.slots[i + FP_B] = k.b;
      this.slots[i + STATE] = PENDING;
      this.slots[i + EXPIRES] = now + this.windowS;
      this.claimed = free;
      return null;
    });
  }

  /**
   * Appends a new key to the process's arrival order; past --idempotency-max-keys, returns the oldest
   * key's entry [slot, a, b] to forget (null: none). The order has its own lock, never held with a
   * bucket's.
   */
  private remember(k: Key): [number, number, number] | null {
    const o = this.order;
    return withLock(this.header, ORDER_LOCK, () => {
      let head = this.header[ORDER_HEAD] as number;
      let length = this.header[ORDER_LENGTH] as number;
      let oldest: [number, number, number] | null = null;
      if (length === this.maxKeys) {
        oldest = [o[head * 3] as number, o[head * 3 + 1] as number, o[head * 3 + 2] as number];
        head = (head + 1) % this.maxKeys;
        length--;
      }
      const at = ((head + length) % this.maxKeys) * 3;
      o[at] = this.claimed;
      o[at + 1] = k.a;
      o[at + 2] = k.b;
      this.header[ORDER_HEAD] = head;
      this.header[ORDER_LENGTH] = length + 1;
      return oldest;
    });
  }

  /** Forgets the oldest key, unless it went already (expired, or its publish failed). */
  private evictOldest(oldest: [number, number, number] | null): void {
    if (oldest === null) return;
    const [slot, a, b] = oldest;
    withWindowLocked(this.locks, Math.floor(slot / BUCKET), () => {
      const i = slot * WORDS;
      if (this.slots[i + FP_A] !== a || this.slots[i + FP_B] !== b) return;
      if ((this.slots[i + EXPIRES] as number) > this.seconds()) this.stats.idempotencyEvicted++;
      this.free(slot);
    });
  }

  /** Under the lock: DONE answers its seq; PENDING is waited for. */
  private outcomeOf(k: Key, slot: number): PublishOutcome | Promise<PublishOutcome> {
    if (this.slots[slot * WORDS + STATE] === DONE) return this.seqs[slot] as number;
    return new Promise((resolve) => {
      const poll = (): void => {
        const o = this.locked(k.bucket, () => {
          const at = this.find(k, this.seconds());
          if (at < 0) return unavailable();
          return this.slots[at * WORDS + STATE] === DONE ? (this.seqs[at] as number) : null;
        });
        if (o === null) setTimeout(poll, POLL_MS);
        else resolve(o);
      };
      setTimeout(poll, POLL_MS);
    });
  }

  /** The first publish's outcome: kept with its seq, or forgotten when it failed. */
  private settle(k: Key, outcome: PublishOutcome): PublishOutcome {
    this.locked(k.bucket, () => {
      const slot = this.find(k, this.seconds());
      if (slot < 0) return;
      if (typeof outcome === 'number') {
        this.seqs[slot] = outcome;
        this.slots[slot * WORDS + STATE] = DONE;
      } else this.free(slot);
    });
    return outcome;
  }

  private find(k: Key, now: number): number {
    for (const b of windowOf(k.bucket, this.mask)) {
      for (let slot = b * BUCKET; slot < (b + 1) * BUCKET; slot++) {
        const i = slot * WORDS;
        if (this.slots[i + FP_A] !== k.a || this.slots[i + FP_B] !== k.b) continue;
        if ((this.slots[i + EXPIRES] as number) > now) return slot;
        this.free(slot);
        return -1;
      }
    }
    return -1;
  }

  /** A slot for a new key: an empty or expired one, else the one expiring first (evicted, counted). */
  private room(k: Key, now: number): number {
    let best = -1;
    let bestExpiry = Infinity;
    for (const b of windowOf(k.bucket, this.mask)) {
      for (let slot = b * BUCKET; slot < (b + 1) * BUCKET; slot++) {
        const i = slot * WORDS;
        if (this.slots[i + FP_B] === 0) {
          Atomics.add(this.header, KEYS, 1);
          return slot;
        }
        const expires = this.slots[i + EXPIRES] as number;
        if (expires < bestExpiry) {
          best = slot;
          bestExpiry = expires;
        }
      }
    }
    if (bestExpiry > now) this.stats.idempotencyEvicted++;
    return best;
  }

  private free(slot: number): void {
    this.slots.fill(0, slot * WORDS, (slot + 1) * WORDS);
    Atomics.sub(this.header, KEYS, 1);
  }

  private seconds(): number {
    return Math.floor((Date.now() - this.memory.epochMs) / 1000);
  }

  private locked<T>(bucket: number, f: () => T): T {
    return withWindowLocked(this.locks, bucket, f);
  }
}

const unavailable = (): GatewayError => new GatewayError(ErrorCode.Unavailable, 'the first publish with this idempotencyKey failed; retry');
