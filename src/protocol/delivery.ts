/**
 * Builds delivery frames `{"t":topic,"s":seq,"d":data}` into buffers reused across publishes.
 *
 * The msgpack envelope is written by hand: the three keys and the seq are a dozen bytes, and writing
 * them around data that is already msgpack lets a message from a broker or history be framed without
 * decoding and re-encoding its data. The returned views are valid until the next call of the same kind;
 * uWS copies them into its own send buffers during publish.
 */
export class DeliveryEncoder {
  private jsonBuf: Buffer;
  private packBuf: Buffer;

  constructor(initialBytes = 64 * 1024) {
    this.jsonBuf = Buffer.allocUnsafe(initialBytes);
    this.packBuf = Buffer.allocUnsafe(initialBytes);
  }

  /** `dataJson` is JSON text of the data; topics are validated ASCII, so they need no escaping. */
  json(topic: string, seq: number, dataJson: string): Uint8Array {
    const text = '{"t":"' + topic + '","s":' + seq + ',"d":' + dataJson + '}';
    // UTF-16 length × 3 bounds the UTF-8 length, so the write below never truncates.
    if (text.length * 3 > this.jsonBuf.length) this.jsonBuf = Buffer.allocUnsafe(text.length * 3);
    const n = this.jsonBuf.write(text, 0, 'utf8');
    return this.jsonBuf.subarray(0, n);
  }

  /** `data` is the msgpack encoding of the data. */
  msgpack(topic: string, seq: number, data: Uint8Array): Uint8Array {
    const need = 16 + topic.length + data.length;
    if (need > this.packBuf.length) this.packBuf = Buffer.allocUnsafe(need * 2);
    const b = this.packBuf;
    let p = 0;
    b[p++] = 0x83; // fixmap, 3 entries
    b[p++] = 0xa1; // fixstr "t"
    b[p++] = 0x74;
    const len = topic.length;
    if (len < 32) b[p++] = 0xa0 | len;
    else {
      b[p++] = 0xd9; // str8: topics are at most 255 bytes (config bound)
      b[p++] = len;
    }
    p += b.write(topic, p, 'latin1'); // validated ASCII: one byte per char
    b[p++] = 0xa1; // fixstr "s"
    b[p++] = 0x73;
    p = writeUint(b, p, seq);
    b[p++] = 0xa1; // fixstr "d"
    b[p++] = 0x64;
    b.set(data, p);
    p += data.length;
    return b.subarray(0, p);
  }
}

function writeUint(b: Buffer, p: number, v: number): number {
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
