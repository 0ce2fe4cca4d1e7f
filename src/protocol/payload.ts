import { packr, unpackr } from './msgpack';

// Binary values (msgpack bin) have no JSON form; JSON subscribers get them as base64 strings. The raw
// value is read from the holder: for a Buffer, `value` is already the result of Buffer#toJSON.
function binaryAsBase64(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  return raw instanceof Uint8Array ? Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') : value;
}

/**
 * The data of one publish, encoded lazily and at most once per form. A single instance is reused for
 * every publish on the hot path (`reset*` then read), so a publish allocates no Payload object.
 */
export class Payload {
  private value: unknown = undefined;
  private hasValue = false;
  private jsonText: string | undefined = undefined;
  private packed: Uint8Array | undefined = undefined;
  private fromBinary = false;

  /** Data decoded from a JSON or msgpack client frame or request body. */
  setValue(value: unknown, fromMsgpack: boolean): this {
    this.value = value;
    this.hasValue = true;
    this.jsonText = undefined;
    this.packed = undefined;
    this.fromBinary = fromMsgpack;
    return this;
  }

  /** Data that arrived already msgpack-encoded (e.g. from a broker). Must stay valid while in use. */
  setPacked(packed: Uint8Array): this {
    this.value = undefined;
    this.hasValue = false;
    this.jsonText = undefined;
    this.packed = packed;
    this.fromBinary = true;
    return this;
  }

  /** The data as JSON text. */
  json(): string {
    if (this.jsonText === undefined) {
      this.jsonText = this.fromBinary ? JSON.stringify(this.decoded(), binaryAsBase64) : JSON.stringify(this.decoded());
    }
    return this.jsonText;
  }

  /** The data as msgpack bytes. A view of a shared buffer: copy it before the next msgpack encode. */
  msgpack(): Uint8Array {
    if (this.packed === undefined) this.packed = packr.pack(this.decoded());
    return this.packed;
  }

  private decoded(): unknown {
    if (!this.hasValue) {
      this.value = unpackr.unpack(this.packed as Uint8Array);
      this.hasValue = true;
    }
    return this.value;
  }
}
