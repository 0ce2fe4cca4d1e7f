import { FrameBuffer, copyBytes, writeAscii, writeDecimal, writeUint } from './delivery';

const HEX = '0123456789abcdef';

/**
 * Builds delta frames `{"t":topic,"s":seq,"delta":true,"d":<delta>}` into buffers reused across
 * publishes (docs/protocol.md, "Deltas").
 *
 * A fossil delta is bytes, mostly ASCII but carrying literal runs of the data that may cut a UTF-8
 * sequence anywhere, so it is not always valid UTF-8. On JSON it travels as a string whose characters
 * are the bytes (U+0000..U+00FF, i.e. Latin-1): a client takes `d` from JSON.parse and maps each
 * character code to one byte (`Buffer.from(d, 'latin1')`). Quote, backslash and control bytes are
 * escaped; bytes 0x80..0xFF are written as the two-byte UTF-8 of U+0080..U+00FF. Base64 would cost a
 * third more on the mostly-ASCII deltas of JSON data. On msgpack `d` is bin: the bytes as they are.
 */
export class DeltaFrameEncoder {
  private readonly jsonOut = new FrameBuffer(4096);
  private readonly packOut = new FrameBuffer(4096);

  /** The delta is bytes [0, n) of `delta`. */
  json(topic: string, seq: number, delta: Uint8Array, n = delta.length): Uint8Array {
    const out = this.jsonOut;
    // Worst case six bytes per delta byte (\u00XX).
    const b = out.reserve(48 + topic.length + n * 6);
    let p = writeAscii(b, 0, '{"t":"');
    p = writeAscii(b, p, topic);
    p = writeAscii(b, p, '","s":');
    p = writeDecimal(b, p, seq);
    p = writeAscii(b, p, ',"delta":true,"d":"');
    for (let i = 0; i < n; i++) p = writeLatin1Char(b, p, delta[i] as number);
    b[p++] = 0x22; // "
    b[p++] = 0x7d; // }
    return out.view(p);
  }

  msgpack(topic: string, seq: number, delta: Uint8Array, n = delta.length): Uint8Array {
    const out = this.packOut;
    const b = out.reserve(32 + topic.length + n);
    let p = 0;
    b[p++] = 0x84; // fixmap, 4 entries
    b[p++] = 0xa1; // fixstr "t"
    b[p++] = 0x74;
    if (topic.length < 32) b[p++] = 0xa0 | topic.length;
    else {
      b[p++] = 0xd9; // str8: topics are at most 255 bytes (config bound)
      b[p++] = topic.length;
    }
    p = writeAscii(b, p, topic);
    b[p++] = 0xa1; // fixstr "s"
    b[p++] = 0x73;
    p = writeUint(b, p, seq);
    p = writeAscii(b, p, '\xa5delta\xc3'); // fixstr "delta", true
    b[p++] = 0xa1; // fixstr "d"
    b[p++] = 0x64;
    if (n < 0x100) {
      b[p++] = 0xc4; // bin8
      b[p++] = n;
    } else if (n < 0x10000) {
      b[p++] = 0xc5; // bin16
      b.writeUInt16BE(n, p);
      p += 2;
    } else {
      b[p++] = 0xc6; // bin32
      b.writeUInt32BE(n, p);
      p += 4;
    }
    p = copyBytes(delta, 0, n, b, p);
    return out.view(p);
  }
}

/** One byte as a JSON string character U+0000..U+00FF, UTF-8 encoded and escaped where JSON requires. */
function writeLatin1Char(b: Buffer, p: number, c: number): number {
  if (c >= 0x80) {
    b[p] = 0xc0 | (c >> 6);
    b[p + 1] = 0x80 | (c & 0x3f);
    return p + 2;
  }
  if (c === 0x22 || c === 0x5c) {
    b[p] = 0x5c; // backslash
    b[p + 1] = c;
    return p + 2;
  }
  if (c === 0x0a) {
    b[p] = 0x5c;
    b[p + 1] = 0x6e; // \n: every fossil delta has one, after the size
    return p + 2;
  }
  if (c < 0x20) {
    b[p] = 0x5c;
    b[p + 1] = 0x75; // u
    b[p + 2] = 0x30;
    b[p + 3] = 0x30;
    b[p + 4] = HEX.charCodeAt(c >> 4);
    b[p + 5] = HEX.charCodeAt(c & 0xf);
    return p + 6;
  }
  b[p] = c;
  return p + 1;
}
