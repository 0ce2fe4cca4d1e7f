import { ByteRing } from './byte-ring';

export interface HistoryLimits {
  /** Entries kept per topic. */
  readonly size: number;
  readonly ttlMs: number;
}

/** The global byte budget shared by all topics' rings (first come, first served). */
export class HistoryBudget {
  used = 0;
  entries = 0;
  constructor(readonly max: number) {}

  take(n: number): boolean {
    if (this.used + n > this.max) return false;
    this.used += n;
    return true;
  }

  give(n: number): void {
    this.used -= n;
  }
}

const INITIAL_RING_BYTES = 4096;

/**
 * Copies `count` entries starting at ring index `first` of `old` to the start of `fresh`. Module-level:
 * a closure inside append()'s callee would make V8 allocate a context on every append.
 */
function reorder<T extends Float64Array | Int32Array>(old: T, fresh: T, first: number, count: number): T {
  for (let k = 0; k < count; k++) fresh[k] = old[(first + k) % old.length] as number;
  return fresh;
}
const INITIAL_ENTRIES = 16;

/** One retained message: where its frames are and which codecs it was encoded in (length -1: absent). */
export interface HistoryFrames {
  readonly jsonFrame: Uint8Array | null;
  readonly packFrame: Uint8Array | null;
}

/**
 * A topic's last messages as already-encoded delivery frames, in parallel typed arrays plus one byte
 * ring, so retaining a message copies its bytes and creates no object. Bounded by entry count, age and
 * the shared byte budget.
 */
export class TopicHistory {
  private seqs = new Float64Array(0);
  private times = new Float64Array(0);
  private offs = new Int32Array(0);
  private jsonLens = new Int32Array(0);
  private packLens = new Int32Array(0);
  private first = 0;
  count = 0;
  private ring: ByteRing | null = null;

  constructor(
    private readonly limits: HistoryLimits,
    private readonly budget: HistoryBudget,
  ) {}

  get bytes(): number {
    return this.ring?.capacity ?? 0;
  }

  /** Sequence of the oldest retained message (0 when empty). */
  get oldestSeq(): number {
    return this.count === 0 ? 0 : (this.seqs[this.first] as number);
  }

  append(seq: number, now: number, frames: HistoryFrames): void {
    const jsonLen = frames.jsonFrame?.length ?? -1;
    const packLen = frames.packFrame?.length ?? -1;
    const need = Math.max(jsonLen, 0) + Math.max(packLen, 0);
    if (this.count === this.limits.size) this.evictOldest();
    this.ensureEntrySlots();
    let off = -1;
    for (;;) {
      off = this.ring === null ? -1 : this.ring.reserve(need);
      if (off >= 0) break;
      if (this.growRing(need)) continue;
      if (this.count === 0) {
        // Larger than any ring the budget allows: not retained; older positions already cannot recover.
        return;
      }
      this.evictOldest();
    }
    const ring = this.ring as ByteRing;
    if (frames.jsonFrame) ring.buf.set(frames.jsonFrame, off);
    if (frames.packFrame) ring.buf.set(frames.packFrame, off + Math.max(jsonLen, 0));
    ring.commit(off, need);
    const i = (this.first + this.count) % this.seqs.length;
    this.seqs[i] = seq;
    this.times[i] = now;
    this.offs[i] = off;
    this.jsonLens[i] = jsonLen;
    this.packLens[i] = packLen;
    this.count++;
    this.budget.entries++;
  }

  evictExpired(now: number): void {
    const cutoff = now - this.limits.ttlMs;
    while (this.count > 0 && (this.times[this.first] as number) < cutoff) this.evictOldest();
  }

  /**
   * Whether every message after `since` up to `currentSeq` is retained, so a resume from `since` loses
   * nothing.
   */
  covers(since: number, currentSeq: number): boolean {
    if (since > currentSeq) return false;
    if (since === currentSeq) return true;
    return this.count > 0 && this.oldestSeq <= since + 1;
  }

  /** Calls `visit` with each retained message after `since`, oldest first. Views are valid during the call. */
  forEachAfter(since: number, visit: (seq: number, frames: HistoryFrames) => void): void {
    const ring = this.ring;
    if (ring === null) return;
    for (let k = 0; k < this.count; k++) {
      const i = (this.first + k) % this.seqs.length;
      const seq = this.seqs[i] as number;
      if (seq <= since) continue;
      const off = this.offs[i] as number;
      const jl = this.jsonLens[i] as number;
      const pl = this.packLens[i] as number;
      const jsonStart = off;
      const packStart = off + Math.max(jl, 0);
      visit(seq, {
        jsonFrame: jl < 0 ? null : ring.buf.subarray(jsonStart, jsonStart + jl),
        packFrame: pl < 0 ? null : ring.buf.subarray(packStart, packStart + pl),
      });
    }
  }

  /** Frees everything, returning its bytes to the budget. */
  clear(): void {
    this.budget.entries -= this.count;
    this.count = 0;
    this.first = 0;
    if (this.ring !== null) this.budget.give(this.ring.capacity);
    this.ring = null;
  }

  private evictOldest(): void {
    const ring = this.ring as ByteRing;
    const next = (this.first + 1) % this.seqs.length;
    ring.release(this.count > 1 ? (this.offs[next] as number) : 0);
    this.first = next;
    this.count--;
    this.budget.entries--;
  }

  private ensureEntrySlots(): void {
    if (this.count < this.seqs.length) return;
    const n = Math.min(this.limits.size, Math.max(INITIAL_ENTRIES, this.seqs.length * 2));
    const { first, count } = this;
    this.seqs = reorder(this.seqs, new Float64Array(n), first, count);
    this.times = reorder(this.times, new Float64Array(n), first, count);
    this.offs = reorder(this.offs, new Int32Array(n), first, count);
    this.jsonLens = reorder(this.jsonLens, new Int32Array(n), first, count);
    this.packLens = reorder(this.packLens, new Int32Array(n), first, count);
    this.first = 0;
  }

  /** Doubles the ring (compacting live blocks to its start) if the budget allows; false otherwise. */
  private growRing(need: number): boolean {
    const old = this.ring;
    const oldCap = old?.capacity ?? 0;
    // Grow only while there are fewer entries than the limit: otherwise evicting is the bound.
    if (old !== null && this.count >= this.limits.size) return false;
    const cap = Math.max(INITIAL_RING_BYTES, oldCap * 2, need * 2);
    if (!this.budget.take(cap - oldCap)) return false;
    const ring = new ByteRing(cap);
    let pos = 0;
    for (let k = 0; k < this.count; k++) {
      const i = (this.first + k) % this.seqs.length;
      const len = Math.max(this.jsonLens[i] as number, 0) + Math.max(this.packLens[i] as number, 0);
      const off = this.offs[i] as number;
      (old as ByteRing).buf.copy(ring.buf, pos, off, off + len);
      ring.commit(pos, len);
      this.offs[i] = pos;
      pos += len;
    }
    this.ring = ring;
    return true;
  }
}
