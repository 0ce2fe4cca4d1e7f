import { randomBytes } from 'node:crypto';
import type { PublishOutcome } from '../broker/broker';
import type { Stats } from '../metrics/stats';
import { ErrorCode, GatewayError } from '../protocol/codes';
import { BUCKET, type Fingerprint as Key, fingerprint, windowOf, withWindowLocked } from '../shared/bucket-table';
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

/** The process's idempotency keys (workers mode, memory broker), made by the supervisor. */
export interface IdempotencyMemory {
  readonly slots: SharedArrayBuffer;
  readonly seqs: SharedArrayBuffer;
  readonly locks: SharedArrayBuffer;
  /** Int32 [keys held]. */
  readonly header: SharedArrayBuffer;
  readonly seed: string;
  readonly epochMs: number;
}

/** Room for twice --idempotency-max-keys, in buckets of 8 (at least 2). */
export function createIdempotencyMemory(maxKeys: number): IdempotencyMemory {
  const buckets = Math.max(2, 2 ** Math.ceil(Math.log2(Math.ceil((2 * maxKeys) / BUCKET))));
  return {
    slots: new SharedArrayBuffer(buckets * BUCKET * WORDS * 4),
    seqs: new SharedArrayBuffer(buckets * BUCKET * 8),
    locks: new SharedArrayBuffer(buckets * 4),
    header: new SharedArrayBuffer(4),
    seed: randomBytes(16).toString('hex'),
    epochMs: Date.now(),
  };
}

/**
 * Idempotency keys for every worker of one process (memory broker): a retried publish with the same key
 * is published once whichever worker it lands on. A fixed table in shared memory; a key (scoped to
 * its topic) is a 64-bit keyed fingerprint in a window of two buckets of 8 slots, each bucket under a
 * lock word. A key is PENDING while its first publish is numbered and DONE with that seq after; a
 * repeat of a pending key waits for it (polling every 2 ms). A first publish that fails is forgotten
 * (a retry publishes; a repeat that was waiting gets `unavailable`). Collision rules: two keys with
 * the same fingerprint are one key (2^-64 per pair); a new key whose 16 slots all hold keys within
 * their window takes the slot of the one expiring first, which is forgotten early (counted in
 * wsgate_idempotency_evicted_total, as the single-thread store's key cap).
 */
export class SharedIdempotency implements Idempotency {
  private readonly slots: Int32Array;
  private readonly seqs: Float64Array;
  private readonly locks: Int32Array;
  private readonly header: Int32Array;
  private readonly mask: number;
  private readonly windowS: number;

  constructor(
    private readonly memory: IdempotencyMemory,
    windowMs: number,
    private readonly stats: Stats,
  ) {
    this.slots = new Int32Array(memory.slots);
    this.seqs = new Float64Array(memory.seqs);
    this.locks = new Int32Array(memory.locks);
    this.header = new Int32Array(memory.header);
    this.mask = this.locks.length - 1;
    this.windowS = Math.ceil(windowMs / 1000);
  }

  once(topic: string, key: string, publish: () => PublishOutcome | Promise<PublishOutcome>): PublishOutcome | Promise<PublishOutcome> {
    const k = fingerprint(this.memory.seed, scopedKey(topic, key), this.mask);
    const now = this.seconds();
    const seen = this.claim(k, now);
    this.stats.idempotencyKeys = Atomics.load(this.header, 0);
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
      return null;
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
          Atomics.add(this.header, 0, 1);
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
    Atomics.sub(this.header, 0, 1);
  }

  private seconds(): number {
    return Math.floor((Date.now() - this.memory.epochMs) / 1000);
  }

  private locked<T>(bucket: number, f: () => T): T {
    return withWindowLocked(this.locks, bucket, f);
  }
}

const unavailable = (): GatewayError => new GatewayError(ErrorCode.Unavailable, 'the first publish with this idempotencyKey failed; retry');
