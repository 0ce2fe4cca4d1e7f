/**
 * FIFO storage of variable-length byte blocks in one preallocated buffer (a "bip buffer"): blocks are
 * written contiguously, wrapping to the start when the tail has no room, and freed oldest first.
 * History keeps frames here instead of one Buffer per message, so retaining messages allocates nothing.
 */
export class ByteRing {
  readonly buf: Buffer;
  private head = 0; // offset of the oldest live block
  private tail = 0; // where the next block goes
  private live = 0; // number of live blocks (disambiguates head === tail)

  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  get capacity(): number {
    return this.buf.length;
  }

  /** Offset where `n` bytes fit right now, or -1 if the oldest blocks must be freed first. */
  reserve(n: number): number {
    if (this.live === 0) {
      this.head = this.tail = 0;
      return n <= this.buf.length ? 0 : -1;
    }
    if (this.tail > this.head) {
      if (this.buf.length - this.tail >= n) return this.tail;
      return this.head >= n ? 0 : -1; // wrap
    }
    return this.head - this.tail >= n ? this.tail : -1;
  }

  /** Marks `n` bytes at `offset` (from reserve) as the newest block. */
  commit(offset: number, n: number): void {
    this.tail = offset + n;
    this.live++;
  }

  /** Frees the oldest block; `nextOffset` is the offset of the block after it (ignored when none). */
  release(nextOffset: number): void {
    this.live--;
    this.head = this.live === 0 ? this.tail : nextOffset;
  }
}
