import type { DeliveryEncoder } from './delivery';
import { packr, unpackr } from './msgpack';

// Binary values (msgpack bin) have no JSON form; JSON subscribers get them as base64 strings. The raw
// value is read from the holder: for a Buffer, `value` is already the result of Buffer#toJSON.
function binaryAsBase64(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  return raw instanceof Uint8Array ? Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') : value;
}

const EMPTY = Buffer.alloc(0);

/**
 * The data of one publish, encoded lazily and at most once per form. A single instance is reused for
 * every publish on the hot path (`set*` then read), so a publish allocates no Payload object.
 *
 * Data located in the received bytes by the publish scanner (`setRaw`) is framed by copying those
 * bytes: no decode, no string, no re-encode. Only a subscriber of the other codec makes it decode.
 */
export class Payload {
  private value: unknown = undefined;
  private hasValue = false;
  private jsonText: string | undefined = undefined;
  private packed: Uint8Array | undefined = undefined;
  private fromBinary = false;
  /** Raw JSON data: bytes [rawStart, rawEnd) of rawBuf (empty when not raw JSON). */
  private rawBuf: Buffer = EMPTY;
  private rawStart = 0;
  private rawEnd = 0;
  private rawJson = false;

  /** Data decoded from a JSON or msgpack client frame or request body. */
  setValue(value: unknown, fromMsgpack: boolean): this {
    this.clear();
    this.value = value;
    this.hasValue = true;
    this.fromBinary = fromMsgpack;
    return this;
  }

  /**
   * Well-formed data (checked by the scanner) in bytes [start, end) of `buf`, as JSON text or msgpack.
   * `buf` must stay unchanged while the payload is in use.
   */
  setRaw(buf: Buffer, start: number, end: number, json: boolean): this {
    this.clear();
    this.rawBuf = buf;
    this.rawStart = start;
    this.rawEnd = end;
    this.rawJson = json;
    this.fromBinary = !json;
    return this;
  }

  private clear(): void {
    this.value = undefined;
    this.hasValue = false;
    this.jsonText = undefined;
    this.packed = undefined;
    this.rawBuf = EMPTY;
    this.rawJson = false;
  }

  /** The JSON delivery frame of this data. */
  jsonFrame(encoder: DeliveryEncoder, topic: string, seq: number): Uint8Array {
    if (this.rawJson) return encoder.jsonBytes(topic, seq, this.rawBuf, this.rawStart, this.rawEnd);
    return encoder.json(topic, seq, this.json());
  }

  /** The msgpack delivery frame of this data. */
  msgpackFrame(encoder: DeliveryEncoder, topic: string, seq: number): Uint8Array {
    if (this.rawBuf !== EMPTY && !this.rawJson) return encoder.msgpackBytes(topic, seq, this.rawBuf, this.rawStart, this.rawEnd);
    return encoder.msgpack(topic, seq, this.msgpack());
  }

  /** The data as JSON text. */
  json(): string {
    if (this.jsonText === undefined) {
      this.jsonText = this.rawJson
        ? this.rawBuf.toString('utf8', this.rawStart, this.rawEnd)
        : this.fromBinary
          ? JSON.stringify(this.decoded(), binaryAsBase64)
          : JSON.stringify(this.decoded());
    }
    return this.jsonText;
  }

  /** The data as msgpack bytes. A view of a shared buffer: copy it before the next msgpack encode. */
  msgpack(): Uint8Array {
    if (this.packed === undefined) {
      this.packed = this.rawBuf !== EMPTY && !this.rawJson ? this.rawBuf.subarray(this.rawStart, this.rawEnd) : packr.pack(this.decoded());
    }
    return this.packed;
  }

  /**
   * Bytes of the data in the format it arrived in (JSON text when isJson, else msgpack): what a broker
   * envelope carries, so a receiving node frames it for subscribers of that format without converting.
   */
  dataLength(): number {
    if (this.rawBuf !== EMPTY) return this.rawEnd - this.rawStart;
    return this.isJson ? Buffer.byteLength(this.json()) : this.msgpack().length;
  }

  /** Writes the bytes dataLength() counts to `dst` at `p`; returns the position after them. */
  copyData(dst: Buffer, p: number): number {
    if (this.rawBuf !== EMPTY) return p + this.rawBuf.copy(dst, p, this.rawStart, this.rawEnd);
    if (this.isJson) return p + dst.write(this.json(), p, 'utf8');
    const packed = this.msgpack();
    dst.set(packed, p);
    return p + packed.length;
  }

  /** The buffer of data set by setRaw as JSON text (its bytes are [rawFrom, rawTo)), else null. */
  get rawJsonBuffer(): Buffer | null {
    return this.rawJson ? this.rawBuf : null;
  }

  get rawFrom(): number {
    return this.rawStart;
  }

  get rawTo(): number {
    return this.rawEnd;
  }

  /** Whether the data is JSON text as received (so a JSON frame costs no conversion). */
  get isJson(): boolean {
    return this.rawJson || (this.hasValue && !this.fromBinary);
  }

  /**
   * The data as a value: the one given to setValue (not a copy: read, never change it), else decoded
   * once. For JSON data this is what JSON.parse(json()) would give, without the text round trip.
   */
  data(): unknown {
    return this.decoded();
  }

  private decoded(): unknown {
    if (!this.hasValue) {
      this.value = this.rawJson ? JSON.parse(this.json()) : unpackr.unpack(this.msgpack());
      this.hasValue = true;
    }
    return this.value;
  }
}
