import type { PublishSource } from '../metrics/stats';
import { TOO_DEEP as JSON_TOO_DEEP, scanJsonValue } from '../protocol/json-scan';
import { TOO_DEEP, msgpackDepth } from '../protocol/depth';
import { TopicNames } from '../protocol/topic-names';

/**
 * What crosses the broker: a msgpack array `[topic, seq, epoch, ts, origin, source, format, data]`.
 *
 * - `seq`/`epoch`: the cluster-wide position (Redis assigns them in its script); 0/"" when each node
 *   numbers on receipt (NATS).
 * - `ts`: performance.timeOrigin + performance.now() at publish, ms; gives the round-trip histogram on
 *   the publishing node and the age of retained messages.
 * - `origin`: the publishing node's id, so a node recognises its own echo.
 * - `format`: FORMAT_MSGPACK or FORMAT_JSON, the format the data was published in.
 * - `data`: the publish's data in that format (msgpack bytes, or JSON text as UTF-8), as one byte
 *   string. A receiving node frames it for subscribers of the same format by copying the bytes, and
 *   converts only for the other format (Redis's Lua msgpack writes it as `str`, this encoder as `bin`;
 *   the reader takes either as bytes).
 *
 * Written and read by hand: the layout is fixed, and a generic decoder would turn `str` data into a JS
 * string (breaking binary data) and allocate an array per message.
 */
export const ENVELOPE_FIELDS = 8;
export const FORMAT_MSGPACK = 0;
export const FORMAT_JSON = 1;

export const SOURCES: readonly PublishSource[] = ['socket', 'http', 'broker', 'demo'];

export function isPublishSource(s: string): s is PublishSource {
  return (SOURCES as readonly string[]).includes(s);
}

/** The data a node puts in an envelope: its bytes in the format it was published in (Payload). */
export interface EnvelopeData {
  /** JSON text; else msgpack. */
  readonly isJson: boolean;
  dataLength(): number;
  /** Writes the bytes to `dst` at `p`; returns the position after them. */
  copyData(dst: Buffer, p: number): number;
}

/** The most bytes an envelope of these parts takes (a bound for the buffer it is written into). */
export function envelopeBound(topic: string, epoch: string, origin: string, source: string, data: EnvelopeData): number {
  return 48 + topic.length + epoch.length + origin.length + source.length + data.dataLength();
}

/** Encodes an envelope into a fresh buffer (the broker client keeps a reference until it is written). */
export function encodeEnvelope(topic: string, seq: number, epoch: string, ts: number, origin: string, source: PublishSource, data: EnvelopeData): Buffer {
  const b = Buffer.allocUnsafe(envelopeBound(topic, epoch, origin, source, data));
  return b.subarray(0, writeEnvelope(b, topic, seq, epoch, ts, origin, source, data));
}

/** Writes an envelope at the start of `b` (at least envelopeBound bytes); returns its length. */
export function writeEnvelope(b: Buffer, topic: string, seq: number, epoch: string, ts: number, origin: string, source: PublishSource, data: EnvelopeData): number {
  const n = data.dataLength();
  let p = 0;
  b[p++] = 0x90 | ENVELOPE_FIELDS;
  p = writeAscii(b, p, topic);
  p = writeUint(b, p, seq);
  p = writeAscii(b, p, epoch);
  b[p++] = 0xcb;
  b.writeDoubleBE(ts, p);
  p += 8;
  p = writeAscii(b, p, origin);
  p = writeAscii(b, p, source);
  b[p++] = data.isJson ? FORMAT_JSON : FORMAT_MSGPACK;
  if (n < 0x100) {
    b[p++] = 0xc4;
    b[p++] = n;
  } else if (n < 0x10000) {
    b[p++] = 0xc5;
    b.writeUInt16BE(n, p);
    p += 2;
  } else {
    b[p++] = 0xc6;
    b.writeUInt32BE(n, p);
    p += 4;
  }
  return data.copyData(b, p);
}

/** Below this length a string is copied char by char: cheaper than Buffer.write's call into C++ (bench/micro/envelope.ts). */
const SHORT_ASCII = 64;

/** Topics, epochs, node ids and sources are ASCII by construction: one byte per char. */
function writeAscii(b: Buffer, p: number, s: string): number {
  const n = s.length;
  if (n < 32) b[p++] = 0xa0 | n;
  else {
    b[p++] = 0xd9;
    b[p++] = n;
  }
  if (n >= SHORT_ASCII) return p + b.write(s, p, 'latin1');
  for (let i = 0; i < n; i++) b[p + i] = s.charCodeAt(i);
  return p + n;
}

function writeUint(b: Buffer, p: number, v: number): number {
  if (v < 0x80) {
    b[p] = v;
    return p + 1;
  }
  // As uint32, or uint64 in 32-bit halves: BigInt conversions allocated per message once sequences
  // passed 127 (sequences stay below 2^53).
  if (v < 0x100000000) {
    b[p] = 0xce;
    b.writeUInt32BE(v, p + 1);
    return p + 5;
  }
  b[p] = 0xcf;
  b.writeUInt32BE(Math.floor(v / 0x100000000), p + 1);
  b.writeUInt32BE(v >>> 0, p + 5);
  return p + 9;
}

/** A malformed broker message (another producer on our channel, or a version mismatch). */
export class EnvelopeError extends Error {}

/** Reads the msgpack subset the envelope and Redis's Lua replies use, without copying byte strings. */
export class MsgpackCursor {
  buf: Buffer = Buffer.alloc(0);
  pos = 0;
  /** Where the bytes to read end (a record in a larger buffer ends before it does). */
  end = 0;

  /** Reads `buf[start, end)`. */
  reset(buf: Buffer, start = 0, end = buf.length): this {
    this.buf = buf;
    this.pos = start;
    this.end = end;
    return this;
  }

  /** The length of the array (or map: Redis's msgpack writes an empty table as either) that starts here. */
  arrayLength(): number {
    const t = this.byte();
    if ((t & 0xf0) === 0x90 || (t & 0xf0) === 0x80) return t & 0x0f;
    if (t === 0xdc) return this.u16();
    if (t === 0xdd) return this.u32();
    throw new EnvelopeError(`expected an array, got 0x${t.toString(16)}`);
  }

  /** A str or bin as a view of the buffer. */
  bytes(): Buffer {
    const start = this.skipBytes();
    return this.buf.subarray(start, this.pos);
  }

  /** Moves past a str or bin; returns where its bytes start (they end at `pos`). */
  skipBytes(): number {
    const t = this.byte();
    let n: number;
    if ((t & 0xe0) === 0xa0) n = t & 0x1f;
    else if (t === 0xd9 || t === 0xc4) n = this.byte();
    else if (t === 0xda || t === 0xc5) n = this.u16();
    else if (t === 0xdb || t === 0xc6) n = this.u32();
    else throw new EnvelopeError(`expected bytes, got 0x${t.toString(16)}`);
    const start = this.pos;
    this.pos += n;
    if (this.pos > this.end) throw new EnvelopeError('truncated');
    return start;
  }

  /** An ASCII str; with `names`, no new string for one seen before. */
  ascii(names?: TopicNames): string {
    const start = this.skipBytes();
    return names === undefined ? this.buf.toString('latin1', start, this.pos) : names.get(this.buf, start, this.pos);
  }

  number(): number {
    const b = this.buf;
    const t = this.byte();
    if (t < 0x80) return t;
    if (t >= 0xe0) return t - 0x100;
    const p = this.pos;
    switch (t) {
      case 0xcc:
        this.pos += 1;
        return b.readUInt8(p);
      case 0xcd:
        this.pos += 2;
        return b.readUInt16BE(p);
      case 0xce:
        this.pos += 4;
        return b.readUInt32BE(p);
      case 0xcf:
        this.pos += 8;
        return b.readUInt32BE(p) * 0x100000000 + b.readUInt32BE(p + 4);
      case 0xd0:
        this.pos += 1;
        return b.readInt8(p);
      case 0xd1:
        this.pos += 2;
        return b.readInt16BE(p);
      case 0xd2:
        this.pos += 4;
        return b.readInt32BE(p);
      case 0xd3:
        this.pos += 8;
        return Number(b.readBigInt64BE(p));
      case 0xca:
        this.pos += 4;
        return b.readFloatBE(p);
      case 0xcb:
        this.pos += 8;
        return b.readDoubleBE(p);
      default:
        throw new EnvelopeError(`expected a number, got 0x${t.toString(16)}`);
    }
  }

  private byte(): number {
    if (this.pos >= this.end) throw new EnvelopeError('truncated');
    return this.buf[this.pos++] as number;
  }

  private u16(): number {
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  private u32(): number {
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
}

/** What an envelope's data is, checked like a client's before anything frames or decodes it. */
export type DataCheck = 'ok' | 'too_deep' | 'malformed';

/** One decoded envelope; a single instance is refilled per message on the receive path. */
export class Envelope {
  topic = '';
  seq = 0;
  epoch = '';
  ts = 0;
  origin = '';
  source: PublishSource = 'broker';
  /** The data is JSON text (else msgpack). */
  json = false;
  /** The data: bytes [dataStart, dataEnd) of `buf`, valid while that buffer is. */
  buf: Buffer = Buffer.alloc(0);
  dataStart = 0;
  dataEnd = 0;
  // Topics, epochs, node ids and sources repeat from message to message: read them without new strings.
  private readonly names = new TopicNames();

  /** The data as a view of the received buffer. */
  get data(): Buffer {
    return this.buf.subarray(this.dataStart, this.dataEnd);
  }

  /** Fills this from the cursor's position. Throws EnvelopeError on anything but an envelope. */
  read(c: MsgpackCursor): this {
    if (c.arrayLength() !== ENVELOPE_FIELDS) throw new EnvelopeError('not a wsgate envelope');
    this.topic = c.ascii(this.names);
    this.seq = c.number();
    this.epoch = c.ascii(this.names);
    this.ts = c.number();
    this.origin = c.ascii(this.names);
    const source = c.ascii(this.names);
    this.source = isPublishSource(source) ? source : 'broker';
    const format = c.number();
    if (format !== FORMAT_JSON && format !== FORMAT_MSGPACK) throw new EnvelopeError(`unknown data format ${format}`);
    this.json = format === FORMAT_JSON;
    this.dataStart = c.skipBytes();
    this.dataEnd = c.pos;
    this.buf = c.buf;
    return this;
  }

  /**
   * Whether the data is one well-formed value in its format nesting at most `maxDepth` levels, as a
   * client's data must be (another producer on our channel is not trusted). JSON: the publish scanner
   * (the same walk a client's JSON data gets); msgpack: the depth scan, which accepts what msgpackr
   * itself packs (Dates, undefined) for data that a node decoded and re-encoded.
   */
  checkData(maxDepth: number): DataCheck {
    if (this.json) {
      const p = scanJsonValue(this.buf, this.dataStart, this.dataEnd, maxDepth);
      return p === this.dataEnd ? 'ok' : p === JSON_TOO_DEEP ? 'too_deep' : 'malformed';
    }
    const depth = msgpackDepth(this.buf, maxDepth, this.dataStart, this.dataEnd);
    return depth >= 0 ? 'ok' : depth === TOO_DEEP ? 'too_deep' : 'malformed';
  }
}
