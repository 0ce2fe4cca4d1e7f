/**
 * A single-producer single-consumer byte ring in a SharedArrayBuffer: how one worker thread hands
 * messages to another without a structured clone or an allocation per message (postMessage copies
 * and allocates both; bench/micro/worker-ring.ts measures the difference).
 *
 * Layout: a 16-byte header of Int32 [head, tail] (byte offsets into the data area; the consumer owns
 * head, the producer owns tail), then the data area. A record is [len, kind, id] as Int32 then `len`
 * bytes, padded to 4. A record never wraps: when it does not fit before the end, the producer writes a
 * len of -1 there and starts over at 0. One byte short of full stays free so head === tail means empty.
 * The producer writes the bytes first and publishes them with Atomics.store(tail); the consumer reads
 * tail with Atomics.load, so the bytes are visible before it looks.
 */
const HEADER = 16;
const RECORD_HEADER = 12;
const HEAD = 0;
const TAIL = 1;
const WRAP = -1;
/** Doorbell cells. */
const VALUE = 0;
const ASLEEP = 1;

export function createRing(capacity: number): SharedArrayBuffer {
  return new SharedArrayBuffer(HEADER + (Math.ceil(capacity / 4) * 4));
}

const align = (n: number): number => (n + 3) & ~3;

/** Views shared by both ends. */
class RingViews {
  readonly ctl: Int32Array;
  readonly words: Int32Array;
  readonly bytes: Buffer;
  readonly cap: number;

  constructor(readonly sab: SharedArrayBuffer) {
    this.ctl = new Int32Array(sab, 0, 4);
    this.cap = sab.byteLength - HEADER;
    this.words = new Int32Array(sab, HEADER, this.cap / 4);
    this.bytes = Buffer.from(sab, HEADER, this.cap);
  }
}

export class RingWriter extends RingViews {
  /**
   * Copies `src[0, len)` in as one record; false (nothing written) when the ring lacks room, which the
   * caller handles as a consumer that cannot keep up.
   */
  write(kind: number, id: number, src: Buffer, len: number): boolean {
    const need = RECORD_HEADER + align(len);
    const head = Atomics.load(this.ctl, HEAD);
    let tail = this.ctl[TAIL] as number;
    if (tail >= head) {
      const atEnd = this.cap - tail;
      if (need > atEnd || (need === atEnd && head === 0)) {
        // Wrap: the record goes at 0 and must end before head.
        if (need >= head) return false;
        this.words[tail >> 2] = WRAP;
        tail = 0;
      }
    } else if (need >= head - tail) return false;
    const w = tail >> 2;
    this.words[w] = len;
    this.words[w + 1] = kind;
    this.words[w + 2] = id;
    src.copy(this.bytes, tail + RECORD_HEADER, 0, len);
    tail += need;
    Atomics.store(this.ctl, TAIL, tail === this.cap ? 0 : tail);
    return true;
  }
}

/** Called with each record: its kind and id, and its bytes as `bytes[start, start + len)` (valid during the call). */
export type RecordVisitor = (kind: number, id: number, bytes: Buffer, start: number, len: number) => void;

export class RingReader extends RingViews {
  /** Hands every record written so far to `visit`, freeing each after it; returns how many. */
  drain(visit: RecordVisitor): number {
    let n = 0;
    let head = this.ctl[HEAD] as number;
    const tail = Atomics.load(this.ctl, TAIL);
    while (head !== tail) {
      const w = head >> 2;
      const len = this.words[w] as number;
      if (len === WRAP) {
        head = 0;
        continue;
      }
      visit(this.words[w + 1] as number, this.words[w + 2] as number, this.bytes, head + RECORD_HEADER, len);
      head += RECORD_HEADER + align(len);
      if (head === this.cap) head = 0;
      Atomics.store(this.ctl, HEAD, head);
      n++;
    }
    Atomics.store(this.ctl, HEAD, head);
    return n;
  }
}

/**
 * A worker's doorbell: producers ring it once per event-loop turn after writing (not per message), the
 * consumer sleeps on it with Atomics.waitAsync (no thread blocked) and drains all its rings per wake.
 *
 * Cells: [value, asleep]. Waking a thread is what a cross-thread message costs most (a futex, an
 * eventfd write and a context switch; bench/micro/worker-ring.ts), so a producer notifies only when the
 * consumer said it is going to sleep; a busy consumer finds the records on its next drain. Lost-wakeup
 * freedom (all operations are sequentially consistent): the producer stores its record, bumps `value`,
 * then reads `asleep`; the consumer stores `asleep`, then re-reads `value` before it waits on it. Either
 * the producer sees `asleep` and notifies, or the consumer sees the new `value` and drains again.
 */
export class Doorbell {
  private readonly cell: Int32Array;

  constructor(readonly sab: SharedArrayBuffer) {
    this.cell = new Int32Array(sab, 0, 2);
  }

  static create(): SharedArrayBuffer {
    return new SharedArrayBuffer(8);
  }

  /** Announces records written before this call; wakes the consumer only if it is asleep. */
  ring(): void {
    Atomics.add(this.cell, VALUE, 1);
    if (Atomics.load(this.cell, ASLEEP) !== 0) Atomics.notify(this.cell, VALUE);
  }

  get value(): number {
    return Atomics.load(this.cell, VALUE);
  }

  /**
   * Marks the consumer asleep and resolves once the bell rang after `seen` (null: it already did, drain
   * again; else call awake() when it resolves). A pending wait does not keep the thread's event loop
   * alive: a worker's uWS app does, and once it is closed the worker may end.
   */
  wait(seen: number): Promise<unknown> | null {
    Atomics.store(this.cell, ASLEEP, 1);
    if (Atomics.load(this.cell, VALUE) !== seen) {
      this.awake();
      return null;
    }
    const w = (Atomics as unknown as AtomicsWaitAsync).waitAsync(this.cell, VALUE, seen);
    if (w.async) return w.value;
    this.awake();
    return null;
  }

  /** The consumer is draining (call when a wait resolves): producers stop notifying until it waits again. */
  awake(): void {
    Atomics.store(this.cell, ASLEEP, 0);
  }
}

/** Atomics.waitAsync (Node 16+), missing from the ES2022 lib typings. */
interface AtomicsWaitAsync {
  waitAsync(a: Int32Array, index: number, value: number): { async: false; value: string } | { async: true; value: Promise<string> };
}
