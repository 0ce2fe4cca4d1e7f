import { copyBytes } from '../protocol/delivery';

/** Hash window of the fossil algorithm (bytes); a power of two. */
const NHASH = 16;
const DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~';

/**
 * The fossil delta encoder of the `fossil-delta` npm package (createDelta, 2.0.0), ported to reused
 * buffers: byte for byte the same output (test/fossil-encoder.test.ts checks it against the package over
 * generated inputs), but no allocation per call. The package builds two hash tables as plain arrays and
 * the delta as a number[] pushed byte by byte, then copies it into a Uint8Array: 9-50 KB of garbage per
 * publish of a 2-40 KB document, against none here, in about the same time (bench/micro/fossil.ts,
 * `npm run bench -- --scenario delta`, measures both).
 * Clients decode with the package's applyDelta.
 */
export class FossilEncoder {
  private landmark = new Int32Array(1024);
  private collide = new Int32Array(1024);
  private out = Buffer.allocUnsafe(4096);
  private len = 0;
  // Rolling hash over the last NHASH bytes.
  private readonly window = new Uint8Array(NHASH);
  private ha = 0;
  private hb = 0;
  private hi = 0;

  /** Bytes [0, length) hold the last delta made; valid until the next create(). */
  get bytes(): Buffer {
    return this.out;
  }

  /** Makes the delta turning `source[from, to)` into `target[start, end)` in `bytes`; returns its length. */
  create(source: Uint8Array, from: number, to: number, target: Uint8Array, start: number, end: number): number {
    const lenOut = end - start;
    this.len = 0;
    this.putInt(lenOut);
    this.putByte(0x0a); // \n
    if (to - from <= NHASH) {
      // No copy can pay for itself: one literal of the whole target.
      this.putLiteral(target, start, end);
    } else {
      this.copyAndInsert(source, from, to - from, target, start, lenOut);
    }
    this.putInt(checksum(target, start, end));
    this.putByte(0x3b); // ;
    return this.len;
  }

  /** The body of the algorithm (fossil's delta_create); source positions are relative to `from`, target ones to `start`. */
  private copyAndInsert(source: Uint8Array, from: number, lenSrc: number, target: Uint8Array, start: number, lenOut: number): void {
    const nHash = Math.ceil(lenSrc / NHASH);
    if (nHash > this.landmark.length) {
      this.landmark = new Int32Array(nHash * 2);
      this.collide = new Int32Array(nHash * 2);
    }
    const landmark = this.landmark;
    const collide = this.collide;
    landmark.fill(-1, 0, nHash);
    collide.fill(-1, 0, nHash);
    for (let i = 0; i < lenSrc - NHASH; i += NHASH) {
      this.hashInit(source, from + i);
      const hv = this.hashValue() % nHash;
      collide[i / NHASH] = landmark[hv] as number;
      landmark[hv] = i / NHASH;
    }
    let base = 0;
    while (base + NHASH < lenOut) {
      let bestOfst = 0;
      let bestLitsz = 0;
      let bestCnt = 0;
      this.hashInit(target, start + base);
      let i = 0; // trying to match a landmark against target[base + i]
      for (;;) {
        let limit = 250;
        let iBlock = landmark[this.hashValue() % nHash] as number;
        while (iBlock >= 0 && limit-- > 0) {
          // Extend the match forwards from source[iSrc] / target[base + i], then backwards.
          const iSrc = iBlock * NHASH;
          let j = 0;
          for (let x = iSrc, y = base + i; x < lenSrc && y < lenOut; j++, x++, y++) if (source[from + x] !== target[start + y]) break;
          j--;
          let k = 1;
          for (; k < iSrc && k <= i; k++) if (source[from + iSrc - k] !== target[start + base + i - k]) break;
          k--;
          const ofst = iSrc - k;
          const cnt = j + k + 1;
          // Bytes the insert and copy commands would take: a copy only if it does not cost more than it saves.
          const sz = digitCount(i - k) + digitCount(cnt) + digitCount(ofst) + 3;
          if (cnt >= sz && cnt > bestCnt) {
            bestCnt = cnt;
            bestOfst = ofst;
            bestLitsz = i - k;
          }
          iBlock = collide[iBlock] as number;
        }
        if (bestCnt > 0) {
          if (bestLitsz > 0) {
            this.putLiteral(target, start + base, start + base + bestLitsz);
            base += bestLitsz;
          }
          base += bestCnt;
          this.putInt(bestCnt);
          this.putByte(0x40); // @
          this.putInt(bestOfst);
          this.putByte(0x2c); // ,
          break;
        }
        if (base + i + NHASH >= lenOut) {
          // The end, and no match: the rest is a literal.
          this.putLiteral(target, start + base, start + lenOut);
          base = lenOut;
          break;
        }
        this.hashNext(target[start + base + i + NHASH] as number);
        i++;
      }
    }
    if (base < lenOut) this.putLiteral(target, start + base, start + lenOut);
  }

  private hashInit(z: Uint8Array, pos: number): void {
    let a = 0;
    let b = 0;
    for (let i = 0; i < NHASH; i++) {
      const x = z[pos + i] as number;
      a = (a + x) & 0xffff;
      b = (b + (NHASH - i) * x) & 0xffff;
      this.window[i] = x;
    }
    this.ha = a;
    this.hb = b;
    this.hi = 0;
  }

  private hashNext(c: number): void {
    const old = this.window[this.hi] as number;
    this.window[this.hi] = c;
    this.hi = (this.hi + 1) & (NHASH - 1);
    this.ha = (this.ha - old + c) & 0xffff;
    this.hb = (this.hb - NHASH * old + this.ha) & 0xffff;
  }

  private hashValue(): number {
    return (this.ha | (this.hb << 16)) >>> 0;
  }

  /** An insert command: `<length>:` and the bytes. */
  private putLiteral(src: Uint8Array, from: number, to: number): void {
    this.putInt(to - from);
    this.putByte(0x3a); // :
    this.reserve(to - from);
    this.len = copyBytes(src, from, to, this.out, this.len);
  }

  private putByte(b: number): void {
    this.reserve(1);
    this.out[this.len++] = b;
  }

  /** An unsigned integer in fossil's base 64, most significant digit first. */
  private putInt(v: number): void {
    const n = digitCount(v);
    this.reserve(n);
    for (let p = this.len + n - 1; p >= this.len; p--, v = Math.floor(v / 64)) this.out[p] = DIGITS.charCodeAt(v % 64);
    this.len += n;
  }

  private reserve(n: number): void {
    if (this.len + n <= this.out.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.len + n));
    this.out.copy(grown, 0, 0, this.len);
    this.out = grown;
  }
}

/** Base-64 digits of a non-negative integer (at least one). */
function digitCount(v: number): number {
  let i = 1;
  for (let x = 64; v >= x; i++, x *= 64);
  return i;
}

/** Fossil's 32-bit checksum of bytes [start, end): four byte-lane sums, then the tail. */
function checksum(arr: Uint8Array, start: number, end: number): number {
  let sum0 = 0;
  let sum1 = 0;
  let sum2 = 0;
  let sum3 = 0;
  let z = start;
  let n = end - start;
  while (n >= 4) {
    sum0 = (sum0 + (arr[z] as number)) | 0;
    sum1 = (sum1 + (arr[z + 1] as number)) | 0;
    sum2 = (sum2 + (arr[z + 2] as number)) | 0;
    sum3 = (sum3 + (arr[z + 3] as number)) | 0;
    z += 4;
    n -= 4;
  }
  sum3 = (((((sum3 + (sum2 << 8)) | 0) + (sum1 << 16)) | 0) + (sum0 << 24)) | 0;
  if (n === 3) sum3 = (sum3 + ((arr[z + 2] as number) << 8)) | 0;
  if (n >= 2) sum3 = (sum3 + ((arr[z + 1] as number) << 16)) | 0;
  if (n >= 1) sum3 = (sum3 + ((arr[z] as number) << 24)) | 0;
  return sum3 >>> 0;
}
