/**
 * Builds delivery frames `{"t":topic,"s":seq,"d":data}` into buffers reused across publishes.
 *
 * The msgpack envelope is written by hand: the three keys and the seq are a dozen bytes, and writing
 * them around data that is already msgpack lets a message from a broker or history be framed without
 * decoding and re-encoding its data. The returned views are valid until the next call of the same kind;
 * uWS copies them into its own send buffers during publish.
 */
export class DeliveryEncoder {
  private readonly jsonOut: FrameBuffer;
  private readonly packOut: FrameBuffer;

  constructor(initialBytes = 64 * 1024) {
    this.jsonOut = new FrameBuffer(initialBytes);
    this.packOut = new FrameBuffer(initialBytes);
  }

  /** `dataJson` is JSON text of the data; topics are validated ASCII, so they need no escaping. */
  json(topic: string, seq: number, dataJson: string): Uint8Array {
    const text = '{"t":"' + topic + '","s":' + seq + ',"d":' + dataJson + '}';
    // UTF-16 length × 3 bounds the UTF-8 length, so the write below never truncates.
    const b = this.jsonOut.reserve(text.length * 3);
    this.jsonOut.setHeader('', 0);
    return this.jsonOut.view(b.write(text, 0, 'utf8'));
  }

  /** Like json(), with the data's JSON text given as bytes [start, end) of `data`, copied as they are. */
  jsonBytes(topic: string, seq: number, data: Uint8Array, start: number, end: number): Uint8Array {
    const out = this.jsonOut;
    const b = out.reserve(32 + topic.length + end - start);
    // `{"t":"<topic>","s":` stays in the buffer from the previous frame of the same topic.
    let p = out.headerFor(topic);
    if (p === 0) {
      p = writeAscii(b, 0, '{"t":"');
      p = writeAscii(b, p, topic);
      p = writeAscii(b, p, '","s":');
      out.setHeader(topic, p);
    }
    p = writeDecimal(b, p, seq);
    p = writeAscii(b, p, ',"d":');
    p = copyBytes(data, start, end, b, p);
    b[p++] = 0x7d; // }
    return this.jsonOut.view(p);
  }

  /** `data` is the msgpack encoding of the data. */
  msgpack(topic: string, seq: number, data: Uint8Array): Uint8Array {
    return this.msgpackBytes(topic, seq, data, 0, data.length);
  }

  /** Like msgpack(), with the data's encoding given as bytes [start, end) of `data`. */
  msgpackBytes(topic: string, seq: number, data: Uint8Array, start: number, end: number): Uint8Array {
    const out = this.packOut;
    const b = out.reserve(16 + topic.length + end - start);
    let p = out.headerFor(topic);
    if (p === 0) {
      b[p++] = 0x83; // fixmap, 3 entries
      b[p++] = 0xa1; // fixstr "t"
      b[p++] = 0x74;
      const len = topic.length;
      if (len < 32) b[p++] = 0xa0 | len;
      else {
        b[p++] = 0xd9; // str8: topics are at most 255 bytes (config bound)
        b[p++] = len;
      }
      p = writeAscii(b, p, topic); // validated ASCII: one byte per char
      b[p++] = 0xa1; // fixstr "s"
      b[p++] = 0x73;
      out.setHeader(topic, p);
    }
    p = writeUint(b, p, seq);
    b[p++] = 0xa1; // fixstr "d"
    b[p++] = 0x64;
    p = copyBytes(data, start, end, b, p);
    return this.packOut.view(p);
  }
}

/** Where the data starts in a JSON delivery frame of this encoder: after `{"t":"<topic>","s":<seq>,"d":`; it ends before the final `}`. */
export const jsonDataStart = (topic: string, seq: number): number => 17 + topic.length + decimalDigits(seq);

/** Where the data starts in a msgpack delivery frame of this encoder (it runs to the frame's end). */
export const packDataStart = (topic: string, seq: number): number => 7 + (topic.length < 32 ? 1 : 2) + topic.length + uintLength(seq);

function decimalDigits(v: number): number {
  let digits = 1;
  for (let x = v; x >= 10; x = (x - (x % 10)) / 10) digits++;
  return digits;
}

function uintLength(v: number): number {
  return v < 0x80 ? 1 : v < 0x100 ? 2 : v < 0x10000 ? 3 : v < 0x100000000 ? 5 : 9;
}

/** Frames up to this size get a cached view; larger ones are rare enough that a view per frame is noise. */
const CACHED_VIEW_MAX = 2048;

/**
 * One reused output buffer and the views of it handed to uWS. A view is an object, so one per publish
 * would be the publish path's last allocation: views are cached per length (bounded by CACHED_VIEW_MAX)
 * and dropped when the buffer grows.
 */
export class FrameBuffer {
  private buf: Buffer;
  private views: (Uint8Array | undefined)[] = [];
  /** The topic whose frame header occupies bytes [0, headerEnd) right now. */
  private headerTopic = '';
  private headerEnd = 0;

  constructor(bytes: number) {
    this.buf = Buffer.allocUnsafe(bytes);
  }

  /** The buffer, grown to hold at least `n` bytes. */
  reserve(n: number): Buffer {
    if (n > this.buf.length) {
      this.buf = Buffer.allocUnsafe(n * 2);
      this.views = [];
      this.headerEnd = 0;
    }
    return this.buf;
  }

  /** Where the header for `topic` ends if it is already in place, else 0 (then write it and setHeader). */
  headerFor(topic: string): number {
    return topic === this.headerTopic ? this.headerEnd : 0;
  }

  setHeader(topic: string, end: number): void {
    this.headerTopic = topic;
    this.headerEnd = end;
  }

  /** Bytes [0, n) of the buffer. */
  view(n: number): Uint8Array {
    if (n > CACHED_VIEW_MAX) return this.buf.subarray(0, n);
    let v = this.views[n];
    if (v === undefined) {
      v = this.buf.subarray(0, n);
      this.views[n] = v;
    }
    return v;
  }
}

/** Short copies byte by byte: Buffer#copy/set of a sub-range make a view object first (Node 20). */
const COPY_LOOP_MAX = 256;

export function copyBytes(src: Uint8Array, start: number, end: number, dst: Buffer, p: number): number {
  const n = end - start;
  if (n <= COPY_LOOP_MAX) {
    for (let i = 0; i < n; i++) dst[p + i] = src[start + i] as number;
  } else dst.set(src.subarray(start, end), p);
  return p + n;
}

export function writeAscii(b: Buffer, p: number, s: string): number {
  for (let i = 0; i < s.length; i++) b[p + i] = s.charCodeAt(i);
  return p + s.length;
}

/**
 * A non-negative integer below 2^53 in decimal. Exact divisions only (`(x - x % 10) / 10`): unoptimized
 * code boxes every fractional intermediate such as `x / 10` into a 16 B heap number, and a publish path
 * running a few hundred times a second is not optimized (bench/README.md).
 */
export function writeDecimal(b: Buffer, p: number, v: number): number {
  const digits = decimalDigits(v);
  for (let i = p + digits - 1; i >= p; i--) {
    const d = v % 10;
    b[i] = 0x30 + d;
    v = (v - d) / 10;
  }
  return p + digits;
}

export function writeUint(b: Buffer, p: number, v: number): number {
  if (v < 0x80) {
    b[p] = v;
    return p + 1;
  }
  if (v < 0x100) {
    b[p] = 0xcc;
    b[p + 1] = v;
    return p + 2;
  }
  if (v < 0x10000) {
    b[p] = 0xcd;
    b.writeUInt16BE(v, p + 1);
    return p + 3;
  }
  if (v < 0x100000000) {
    b[p] = 0xce;
    b.writeUInt32BE(v, p + 1);
    return p + 5;
  }
  // Above 2^32 a float64 holds every sequence exactly (they stay below 2^53) and decodes as a plain
  // number everywhere, where many decoders turn uint64 into a BigInt.
  b[p] = 0xcb;
  b.writeDoubleBE(v, p + 1);
  return p + 9;
}
