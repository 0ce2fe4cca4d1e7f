/**
 * Every benchmark payload starts with a fixed-width stamp: `~`, publisher id (2 chars), sequence
 * (5 chars), scheduled send time (8 chars, microseconds since 2025-01-01), each in base 64 over a
 * JSON-safe alphabet. Fixed widths let subscribers read it straight from the frame bytes, with no
 * JSON.parse and no allocation, whatever envelope the server wraps around the data (wsgate, ws,
 * Socket.IO); base 64 keeps the per-message parsing loop short.
 */

const MARK = 0x7e; // '~': never valid in a topic, never in the envelope keys
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_';
const PID_W = 2;
const SEQ_W = 5;
const TS_W = 8;
export const STAMP_LEN = 1 + PID_W + SEQ_W + TS_W;
/** 2025-01-01T00:00:00Z in µs: 8 base-64 digits of µs reach into 2033. */
const EPOCH_US = 1735689600000000;

const ENCODE = Buffer.from(ALPHABET, 'latin1');
const DECODE = new Int8Array(256).fill(-1);
for (let i = 0; i < 64; i++) DECODE[ALPHABET.charCodeAt(i)] = i;

/** Microseconds since 2025-01-01 on a clock shared by all worker threads of a process. */
export function nowUs(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000) - EPOCH_US;
}

function writeDigits(buf: Buffer, off: number, value: number, width: number): void {
  let v = value;
  for (let i = off + width - 1; i >= off; i--) {
    const q = Math.floor(v / 64);
    buf[i] = ENCODE[v - q * 64];
    v = q;
  }
}

/** Writes a stamp at `buf[off]`; returns the offset after it. */
export function writeStamp(buf: Buffer, off: number, pid: number, seq: number, tsUs: number): number {
  buf[off] = MARK;
  writeDigits(buf, off + 1, pid, PID_W);
  writeDigits(buf, off + 1 + PID_W, seq, SEQ_W);
  writeDigits(buf, off + 1 + PID_W + SEQ_W, tsUs < 0 ? 0 : tsUs, TS_W);
  return off + STAMP_LEN;
}

/** Writes a stamp followed by 'x' padding so that the data is exactly `size` bytes. */
export function writePayload(buf: Buffer, off: number, size: number, pid: number, seq: number, tsUs: number): number {
  const p = writeStamp(buf, off, pid, seq, tsUs);
  buf.fill(0x78, p, off + size);
  return off + size;
}

/** Parsed stamp fields, reused for every message (the reader must not allocate). */
export class Stamp {
  pid = 0;
  seq = 0;
  tsUs = 0;

  /** Finds and parses the stamp in `buf[start, end)`; false when the bytes carry none. */
  read(buf: Buffer, start: number, end: number): boolean {
    let i = start;
    while (i < end && buf[i] !== MARK) i++;
    if (end - i < STAMP_LEN) return false;
    let bad = 0;
    let d = 0;
    let pid = 0;
    for (let j = i + 1; j < i + 1 + PID_W; j++) {
      d = DECODE[buf[j]];
      bad |= d;
      pid = pid * 64 + d;
    }
    let seq = 0;
    for (let j = i + 1 + PID_W; j < i + 1 + PID_W + SEQ_W; j++) {
      d = DECODE[buf[j]];
      bad |= d;
      seq = seq * 64 + d;
    }
    let ts = 0;
    for (let j = i + 1 + PID_W + SEQ_W; j < i + STAMP_LEN; j++) {
      d = DECODE[buf[j]];
      bad |= d;
      ts = ts * 64 + d;
    }
    if (bad < 0) return false;
    this.pid = pid;
    this.seq = seq;
    this.tsUs = ts;
    return true;
  }
}
