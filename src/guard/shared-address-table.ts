import { BUCKET, type BucketTableMemory, type Fingerprint as Window, bucketsFor, createBucketMemory, fingerprint, windowOf, withWindowLocked } from '../shared/bucket-table';
import { ADDRESS_TABLE_CAP, type AddressLimiter, type AddressRefusal, connectBurst } from './ip-limits';

const MIN_BUCKETS = 2 ** 13;
const MAX_BUCKETS = 2 ** 17;
// A slot is 4 Int32: fingerprint (2 words, 0/0 = empty), connections (with slots held by checks in
// progress), thousandths of a connect token; its last refill (ms since the table's epoch) is in `at`.
const WORDS = 4;
const FP_A = 0;
const FP_B = 1;
const CONNS = 2;
const TOKENS = 3;

/** The per-address table of one process (workers mode): header Int32 [addresses tracked]. */
export interface SharedAddressMemory extends BucketTableMemory {
  /** Each slot's last refill, ms since the epoch. */
  readonly at: SharedArrayBuffer;
}

/**
 * Room for twice the addresses that can hold connections plus the single-thread table's cap of
 * rate-only entries, within 2^16..2^20 slots (20 bytes each).
 */
export function createAddressMemory(maxConnections: number): SharedAddressMemory {
  const buckets = bucketsFor(ADDRESS_TABLE_CAP + maxConnections, MIN_BUCKETS, MAX_BUCKETS);
  return { ...createBucketMemory(buckets, WORDS, 1), at: new SharedArrayBuffer(buckets * BUCKET * 4) };
}

/**
 * `--max-connections-per-ip` and `--connect-rate-per-ip` for every worker of one process: a fixed
 * table in shared memory (shared/bucket-table.ts: each address's limit key a 64-bit keyed fingerprint
 * in a window of two buckets of 8 slots, under the buckets' lock words, taken once per upgrade and
 * close). Collision rules: two addresses with the
 * same fingerprint share an entry (2^-64 per pair); a new address whose 16 slots are all held by
 * other addresses with open connections is refused as if at its limit (429, counted as ip_limit);
 * an entry without connections is taken over when room is needed (its connect budget starts full
 * again, as when the single-thread table forgets an address).
 */
export class SharedAddressLimits implements AddressLimiter {
  private readonly slots: Int32Array;
  private readonly at: Int32Array;
  private readonly locks: Int32Array;
  private readonly header: Int32Array;
  private readonly mask: number;
  private readonly burstMilli: number;

  constructor(
    private readonly memory: SharedAddressMemory,
    private readonly maxConnections: number,
    private readonly ratePerSecond: number,
  ) {
    this.slots = new Int32Array(memory.slots);
    this.at = new Int32Array(memory.at);
    this.locks = new Int32Array(memory.locks);
    this.header = new Int32Array(memory.header);
    this.mask = this.locks.length - 1;
    this.burstMilli = connectBurst(ratePerSecond) * 1000;
  }

  get enabled(): boolean {
    return this.maxConnections > 0 || this.ratePerSecond > 0;
  }

  get size(): number {
    return Atomics.load(this.header, 0);
  }

  admit(key: string, now: number): AddressRefusal | null {
    const w = this.window(key);
    const t = this.tick(now);
    return this.withLock(w, () => {
      let slot = this.find(w);
      if (this.ratePerSecond > 0) {
        if (slot < 0) slot = this.insert(w, t);
        if (slot < 0) return 'too_many_connections_per_ip';
        if (!this.takeToken(slot, t)) return 'connect_rate_limited';
      }
      // Checked here, held by room() right before the upgrade completes (entrance.enter).
      const conns = slot < 0 ? 0 : (this.slots[slot * WORDS + CONNS] as number);
      return this.maxConnections > 0 && conns >= this.maxConnections ? 'too_many_connections_per_ip' : null;
    });
  }

  room(key: string): AddressRefusal | null {
    if (this.maxConnections === 0) return null;
    const w = this.window(key);
    return this.withLock(w, () => this.hold(w, this.find(w), this.tick(Date.now())));
  }

  opened(key: string, now: number): void {
    this.change(key, now, 1);
  }

  closed(key: string, now: number): void {
    this.change(key, now, -1);
  }

  stop(): void {}

  /**
   * The connection limit, checked and held at once: the slot counts one more connection until the end
   * of the current task (uWS.js runs microtasks as each handler returns), by when the connection it
   * stands for has opened and is counted itself. Two workers cannot both take an address's last slot.
   */
  private hold(w: Window, found: number, t: number): AddressRefusal | null {
    if (this.maxConnections === 0) return null;
    const slot = found >= 0 ? found : this.insert(w, t);
    const i = slot * WORDS;
    if (slot < 0 || (this.slots[i + CONNS] as number) >= this.maxConnections) return 'too_many_connections_per_ip';
    this.slots[i + CONNS] = (this.slots[i + CONNS] as number) + 1;
    queueMicrotask(() => this.withLock(w, () => this.release(slot, this.tick(Date.now()))));
    return null;
  }

  private change(key: string, now: number, delta: number): void {
    // Without a connection limit the table holds only connect budgets.
    if (this.maxConnections === 0) return;
    const w = this.window(key);
    const t = this.tick(now);
    this.withLock(w, () => {
      let slot = this.find(w);
      if (delta < 0) return slot >= 0 && this.release(slot, t);
      // An admitted connection's entry is there (its check held a slot); this only guards a full window.
      if (slot < 0) slot = this.insert(w, t);
      if (slot >= 0) this.slots[slot * WORDS + CONNS] = (this.slots[slot * WORDS + CONNS] as number) + 1;
    });
  }

  /** One connection (or held check) less; an entry left with nothing to remember is freed. */
  private release(slot: number, t: number): void {
    const i = slot * WORDS;
    this.slots[i + CONNS] = (this.slots[i + CONNS] as number) - 1;
    if (this.idle(slot, t)) this.free(slot);
  }

  private takeToken(slot: number, t: number): boolean {
    const i = slot * WORDS;
    const elapsed = (t - (this.at[slot] as number)) >>> 0;
    // rate per second = thousandths of a token per millisecond.
    const milli = Math.min(this.burstMilli, (this.slots[i + TOKENS] as number) + elapsed * this.ratePerSecond);
    this.at[slot] = t;
    if (milli < 1000) {
      this.slots[i + TOKENS] = milli;
      return false;
    }
    this.slots[i + TOKENS] = milli - 1000;
    return true;
  }

  /** No connection and a connect budget that would be full by now: the same as no entry. */
  private idle(slot: number, t: number): boolean {
    const i = slot * WORDS;
    if ((this.slots[i + CONNS] as number) > 0) return false;
    if (this.ratePerSecond === 0) return true;
    return (this.slots[i + TOKENS] as number) + ((t - (this.at[slot] as number)) >>> 0) * this.ratePerSecond >= this.burstMilli;
  }

  private find(w: Window): number {
    for (const b of windowOf(w.bucket, this.mask)) {
      for (let slot = b * BUCKET; slot < (b + 1) * BUCKET; slot++) {
        const i = slot * WORDS;
        if (this.slots[i + FP_A] === w.a && this.slots[i + FP_B] === w.b) return slot;
      }
    }
    return -1;
  }

  /** A slot for a new address: an empty one, else one whose address holds no connection (the least recently charged); -1 when none. */
  private insert(w: Window, t: number): number {
    const buckets = windowOf(w.bucket, this.mask);
    let best = -1;
    let bestAge = -1;
    for (const b of buckets) {
      for (let slot = b * BUCKET; slot < (b + 1) * BUCKET && best < 0; slot++) if (this.slots[slot * WORDS + FP_B] === 0) best = slot;
    }
    if (best >= 0) Atomics.add(this.header, 0, 1);
    else {
      for (const b of buckets) {
        for (let slot = b * BUCKET; slot < (b + 1) * BUCKET; slot++) {
          const age = (t - (this.at[slot] as number)) >>> 0;
          if ((this.slots[slot * WORDS + CONNS] as number) <= 0 && age > bestAge) {
            best = slot;
            bestAge = age;
          }
        }
      }
    }
    if (best < 0) return -1;
    const i = best * WORDS;
    this.slots[i + FP_A] = w.a;
    this.slots[i + FP_B] = w.b;
    this.slots[i + CONNS] = 0;
    this.slots[i + TOKENS] = this.burstMilli;
    this.at[best] = t;
    return best;
  }

  private free(slot: number): void {
    this.slots.fill(0, slot * WORDS, (slot + 1) * WORDS);
    Atomics.sub(this.header, 0, 1);
  }

  private window(key: string): Window {
    return fingerprint(this.memory.seed, key, this.mask);
  }

  /** Milliseconds since the table's epoch, wrapping at 2^32 (ages are taken unsigned). */
  private tick(now: number): number {
    return (now - this.memory.epochMs) | 0;
  }

  private withLock<T>(w: Window, f: () => T): T {
    return withWindowLocked(this.locks, w.bucket, f);
  }
}
