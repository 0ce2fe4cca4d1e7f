import { createHash, randomBytes } from 'node:crypto';

/**
 * What the process-wide tables of workers mode (per-address limits, idempotency keys) share: fixed
 * arrays in a SharedArrayBuffer, slots grouped in buckets of 8, an entry kept in its bucket or the
 * next (a window of 16 slots), found by a 64-bit keyed fingerprint, and one lock word per bucket.
 */
export const BUCKET = 8;

/** The common part of such a table's memory, made by the supervisor and shared by every worker. */
export interface BucketTableMemory {
  /** `words` Int32 per slot, BUCKET slots per bucket. */
  readonly slots: SharedArrayBuffer;
  /** One lock word per bucket. */
  readonly locks: SharedArrayBuffer;
  /** The table's own Int32 cells (counts, further locks). */
  readonly header: SharedArrayBuffer;
  /** Keys the fingerprint hash: which bucket a key lands in cannot be chosen from outside. */
  readonly seed: string;
  /** The table's time zero (ms since 1970), for times kept in Int32 cells. */
  readonly epochMs: number;
}

/** Buckets for `entries` entries with room to spare (twice that many slots), a power of two within [min, max]. */
export function bucketsFor(entries: number, min = 2, max = 2 ** 30): number {
  return Math.min(max, Math.max(min, 2 ** Math.ceil(Math.log2(Math.ceil((2 * entries) / BUCKET)))));
}

export function createBucketMemory(buckets: number, words: number, headerCells: number): BucketTableMemory {
  return {
    slots: new SharedArrayBuffer(buckets * BUCKET * words * 4),
    locks: new SharedArrayBuffer(buckets * 4),
    header: new SharedArrayBuffer(headerCells * 4),
    seed: randomBytes(16).toString('hex'),
    epochMs: Date.now(),
  };
}

/** Where a key lives: its window's first bucket and its fingerprint (b is never 0: 0/0 marks an empty slot). */
export interface Fingerprint {
  readonly bucket: number;
  readonly a: number;
  readonly b: number;
}

/** A keyed hash (the seed is the process's secret): which bucket a key lands in cannot be chosen from outside. */
export function fingerprint(seed: string, key: string, mask: number): Fingerprint {
  const d = createHash('sha256').update(seed).update(key).digest();
  return { bucket: d.readUInt32LE(0) & mask, a: d.readInt32LE(4), b: d.readInt32LE(8) | 1 };
}

/** The two buckets of a window. */
export const windowOf = (bucket: number, mask: number): readonly [number, number] => [bucket, (bucket + 1) & mask];

/**
 * Runs `f` holding the locks of the window starting at `bucket`, taken lower index first (every worker
 * takes them in that order: no deadlock). A lock is held for microseconds; a taken one is waited for
 * with Atomics.wait, which only worker threads may do.
 */
export function withWindowLocked<T>(locks: Int32Array, bucket: number, f: () => T): T {
  const next = (bucket + 1) & (locks.length - 1);
  take(locks, Math.min(bucket, next));
  if (next !== bucket) take(locks, Math.max(bucket, next));
  try {
    return f();
  } finally {
    give(locks, bucket);
    if (next !== bucket) give(locks, next);
  }
}

/** Runs `f` holding lock word `i` of `locks` (a table's own lock, e.g. for its arrival order). */
export function withLock<T>(locks: Int32Array, i: number, f: () => T): T {
  take(locks, i);
  try {
    return f();
  } finally {
    give(locks, i);
  }
}

function take(locks: Int32Array, i: number): void {
  while (Atomics.compareExchange(locks, i, 0, 1) !== 0) Atomics.wait(locks, i, 1, 1);
}

function give(locks: Int32Array, i: number): void {
  Atomics.store(locks, i, 0);
  Atomics.notify(locks, i, 1);
}
