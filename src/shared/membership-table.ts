import { BUCKET, type BucketTableMemory, type Fingerprint, bucketsFor, createBucketMemory, fingerprint, windowOf, withWindowLocked } from './bucket-table';

// A slot is 4 Int32: the key's fingerprint (2 words, 0/0 = empty), the bitmask of the workers holding
// the key, and 1 while the key is empty and its vacate waits for confirmation.
const WORDS = 4;
const FP_A = 0;
const FP_B = 1;
const HOLDERS = 2;
const PENDING = 3;
/** Workers one bitmask can name. */
export const MAX_MEMBERSHIP_WORKERS = 32;

/** A membership table shared by every worker of one process (no header cells). */
export type MembershipMemory = BucketTableMemory;

/** Room for `keys` keys held at once. */
export function createMembershipMemory(keys: number): MembershipMemory {
  return createBucketMemory(bucketsFor(keys), WORDS, 0);
}

/**
 * Which workers hold a key (a topic with subscribers, a member of a topic), so that "first holder in
 * the process" and "last holder gone" are decided once for the process, whichever workers the
 * subscribers are on. The same alternation as the occupancy ledger: the last holder leaving marks the
 * key pending; a holder back before it is confirmed clears that (nothing to announce either way).
 * A fixed table (shared/bucket-table.ts): a key whose window of 16 slots is full of held keys is not
 * tracked (null; the caller decides for its worker alone, as a single node would).
 */
export class SharedMembership {
  private readonly slots: Int32Array;
  private readonly locks: Int32Array;
  private readonly mask: number;
  private readonly bit: number;

  constructor(
    private readonly memory: MembershipMemory,
    worker: number,
  ) {
    this.slots = new Int32Array(memory.slots);
    this.locks = new Int32Array(memory.locks);
    this.mask = this.locks.length - 1;
    this.bit = 1 << worker;
  }

  /** This worker holds `key` now. True: no worker held it and no vacate was pending (announce); null: not tracked. */
  occupy(key: string): boolean | null {
    const k = fingerprint(this.memory.seed, key, this.mask);
    return withWindowLocked(this.locks, k.bucket, () => {
      const slot = this.find(k, true);
      if (slot < 0) return null;
      const i = slot * WORDS;
      const first = this.slots[i + HOLDERS] === 0;
      this.slots[i + HOLDERS] = (this.slots[i + HOLDERS] as number) | this.bit;
      if (!first) return false;
      const pending = this.slots[i + PENDING] === 1;
      this.slots[i + PENDING] = 0;
      return !pending;
    });
  }

  /** This worker no longer holds `key`. True: nobody does (confirm later); null: not tracked. */
  vacate(key: string): boolean | null {
    const k = fingerprint(this.memory.seed, key, this.mask);
    return withWindowLocked(this.locks, k.bucket, () => {
      const slot = this.find(k, false);
      if (slot < 0) return null;
      const i = slot * WORDS;
      this.slots[i + HOLDERS] = (this.slots[i + HOLDERS] as number) & ~this.bit;
      if (this.slots[i + HOLDERS] !== 0) return false;
      this.slots[i + PENDING] = 1;
      return true;
    });
  }

  /** After the delay. True: still held by nobody and not taken meanwhile (announce); the entry goes. */
  confirm(key: string): boolean {
    const k = fingerprint(this.memory.seed, key, this.mask);
    return withWindowLocked(this.locks, k.bucket, () => {
      const slot = this.find(k, false);
      if (slot < 0 || this.slots[slot * WORDS + HOLDERS] !== 0 || this.slots[slot * WORDS + PENDING] !== 1) return false;
      this.slots.fill(0, slot * WORDS, (slot + 1) * WORDS);
      return true;
    });
  }

  /**
   * A new worker with this index starts: what its dead predecessor held is dropped. Keys nobody else
   * holds go silently (their names are not kept: a worker that dies takes their "last holder gone"
   * with it). Returns how many keys it dropped.
   */
  forgetWorker(): number {
    let dropped = 0;
    for (let b = 0; b <= this.mask; b++) {
      withWindowLocked(this.locks, b, () => {
        for (let slot = b * BUCKET; slot < (b + 1) * BUCKET; slot++) {
          const i = slot * WORDS;
          const holders = this.slots[i + HOLDERS] as number;
          if ((holders & this.bit) === 0) continue;
          dropped++;
          this.slots[i + HOLDERS] = holders & ~this.bit;
          if (this.slots[i + HOLDERS] === 0 && this.slots[i + PENDING] === 0) this.slots.fill(0, i, i + WORDS);
        }
      });
    }
    return dropped;
  }

  /** The key's slot; with `insert`, a free one taken for it (neither held nor pending); -1 when none. */
  private find(k: Fingerprint, insert: boolean): number {
    let free = -1;
    for (const b of windowOf(k.bucket, this.mask)) {
      for (let slot = b * BUCKET; slot < (b + 1) * BUCKET; slot++) {
        const i = slot * WORDS;
        if (this.slots[i + FP_A] === k.a && this.slots[i + FP_B] === k.b) return slot;
        if (free < 0 && this.slots[i + HOLDERS] === 0 && this.slots[i + PENDING] === 0) free = slot;
      }
    }
    if (!insert || free < 0) return -1;
    const i = free * WORDS;
    this.slots[i + FP_A] = k.a;
    this.slots[i + FP_B] = k.b;
    this.slots[i + HOLDERS] = 0;
    this.slots[i + PENDING] = 0;
    return free;
  }
}
