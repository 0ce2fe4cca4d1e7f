/**
 * RFC 6455 framing for the load generator, written by hand on purpose.
 *
 * General-purpose clients (ws, socket.io-client, undici) allocate a Buffer or string per received
 * message and emit an event per message. At millions of deliveries per second that garbage makes the
 * generator, not the server, the bottleneck. This scanner never allocates after construction: it
 * walks the bytes of each read in place and hands complete frames to a sink as (buffer, start, end);
 * only a frame split across reads is copied, into a per-connection buffer allocated once.
 */

export const OP_CONT = 0x0;
export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

export interface FrameSink {
  /**
   * One complete frame. `data[start, end)` holds its payload, or only the first `end - start` bytes
   * when the frame is longer than the scanner's capacity; `length` is always the full payload length.
   * The bytes are valid only during the call.
   */
  onFrame(opcode: number, fin: boolean, data: Buffer, start: number, end: number, length: number): void;
  onProtocolError(reason: string): void;
}

/** Largest payload accepted from a server (64-bit lengths above this are treated as corrupt). */
const MAX_FRAME = 2 ** 31;

export class FrameScanner {
  private readonly header = Buffer.alloc(14);
  private headerHave = 0;
  private headerNeed = 2;
  private inPayload = false;
  private opcode = 0;
  private fin = false;
  private length = 0;
  private remain = 0;
  private copied = 0;
  private failed = false;
  private readonly partial: Buffer;

  constructor(private readonly sink: FrameSink, capacity = 2048) {
    this.partial = Buffer.allocUnsafe(capacity);
  }

  /** Feeds `chunk[start, end)`; frames may start and stop at any byte boundary. */
  push(chunk: Buffer, start: number, end: number): void {
    let i = start;
    while (i < end && !this.failed) {
      if (!this.inPayload) {
        if (this.headerHave === 0) {
          const need = end - i >= 2 ? headerLength(chunk[i + 1]) : 0;
          if (need > 0 && end - i >= need) {
            // Fast path: the whole header is in this read.
            if (!this.begin(chunk, i)) return;
            i += need;
            i = this.payload(chunk, i, end);
            continue;
          }
        }
        const b = chunk[i++];
        this.header[this.headerHave++] = b;
        if (this.headerHave === 2) this.headerNeed = headerLength(b);
        if (this.headerHave < this.headerNeed) continue;
        if (!this.begin(this.header, 0)) return;
        i = this.payload(chunk, i, end);
      } else {
        i = this.payload(chunk, i, end);
      }
    }
  }

  /** Parses a complete header at `buf[off]`; returns false after reporting a protocol error. */
  private begin(buf: Buffer, off: number): boolean {
    const b0 = buf[off];
    const b1 = buf[off + 1];
    if ((b0 & 0x70) !== 0) return this.fail('reserved bits set');
    if ((b1 & 0x80) !== 0) return this.fail('masked server frame');
    const len7 = b1 & 0x7f;
    let length: number;
    if (len7 < 126) length = len7;
    else if (len7 === 126) length = buf.readUInt16BE(off + 2);
    else length = buf.readUInt32BE(off + 2) * 0x100000000 + buf.readUInt32BE(off + 6);
    if (length > MAX_FRAME) return this.fail('frame too large');
    this.opcode = b0 & 0x0f;
    this.fin = (b0 & 0x80) !== 0;
    if (this.opcode >= OP_CLOSE && (length > 125 || !this.fin)) return this.fail('bad control frame');
    this.length = length;
    this.remain = length;
    this.copied = 0;
    this.inPayload = true;
    this.headerHave = 0;
    this.headerNeed = 2;
    return true;
  }

  /** Consumes payload bytes from `chunk[i, end)`; returns the new read position. */
  private payload(chunk: Buffer, i: number, end: number): number {
    const avail = end - i;
    if (this.copied === 0 && this.remain === this.length && avail >= this.length) {
      // Whole payload in this read: deliver in place, no copy.
      const stop = i + this.length;
      this.inPayload = false;
      const cap = Math.min(stop, i + this.partial.length);
      this.sink.onFrame(this.opcode, this.fin, chunk, i, cap, this.length);
      return stop;
    }
    const take = avail < this.remain ? avail : this.remain;
    const room = this.partial.length - this.copied;
    if (room > 0) chunk.copy(this.partial, this.copied, i, i + (take < room ? take : room));
    this.copied += take < room ? take : room;
    this.remain -= take;
    if (this.remain === 0) {
      this.inPayload = false;
      this.sink.onFrame(this.opcode, this.fin, this.partial, 0, this.copied, this.length);
    }
    return i + take;
  }

  private fail(reason: string): false {
    this.failed = true;
    this.sink.onProtocolError(reason);
    return false;
  }
}

/** Header size implied by the second header byte (2, 4 or 10; a mask would add 4 but is rejected). */
function headerLength(b1: number): number {
  const len7 = b1 & 0x7f;
  const base = len7 < 126 ? 2 : len7 === 126 ? 4 : 10;
  return (b1 & 0x80) !== 0 ? base + 4 : base;
}

/** Size of a masked client frame header for a payload of `length` bytes. */
export function clientHeaderLength(length: number): number {
  return (length < 126 ? 2 : length < 0x10000 ? 4 : 10) + 4;
}

/**
 * Writes a final, masked client frame header at `out[off]` and returns where the payload goes. The
 * caller writes the payload there and then calls `maskPayload` with the same key.
 */
export function writeClientHeader(out: Buffer, off: number, opcode: number, length: number, mask: Uint8Array): number {
  out[off] = 0x80 | opcode;
  let p = off + 2;
  if (length < 126) {
    out[off + 1] = 0x80 | length;
  } else if (length < 0x10000) {
    out[off + 1] = 0x80 | 126;
    out.writeUInt16BE(length, off + 2);
    p = off + 4;
  } else {
    out[off + 1] = 0x80 | 127;
    out.writeUInt32BE(Math.floor(length / 0x100000000), off + 2);
    out.writeUInt32BE(length >>> 0, off + 6);
    p = off + 10;
  }
  out[p] = mask[0];
  out[p + 1] = mask[1];
  out[p + 2] = mask[2];
  out[p + 3] = mask[3];
  return p + 4;
}

/** XORs `out[start, end)` with the 4-byte key (client-to-server masking, RFC 6455 §5.3). */
export function maskPayload(out: Buffer, start: number, end: number, mask: Uint8Array): void {
  for (let i = start; i < end; i++) out[i] ^= mask[(i - start) & 3];
}

/** Encodes one masked frame into a new Buffer (handshake-time and control use, not the hot path). */
export function encodeClientFrame(opcode: number, payload: Buffer, mask: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(clientHeaderLength(payload.length) + payload.length);
  const p = writeClientHeader(out, 0, opcode, payload.length, mask);
  payload.copy(out, p);
  maskPayload(out, p, p + payload.length, mask);
  return out;
}
