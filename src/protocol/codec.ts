import { packr, unpackr } from './msgpack';

export type CodecName = 'json' | 'msgpack';

/** A reply or notice the server sends to one connection (not a delivery: those are built by DeliveryEncoder). */
/** One message of a history reply: its sequence and data. */
export interface HistoryMessage {
  readonly s: number;
  readonly d: unknown;
}

export type Reply =
  | { op: 'ok'; id?: number; seq?: number; epoch?: string; recovered?: boolean; messages?: readonly HistoryMessage[] }
  | { op: 'err'; id?: number; code: string; reason: string }
  | { op: 'dropped'; n: number };

/** How one connection's frames are decoded and its replies encoded. */
export interface Codec {
  readonly name: CodecName;
  /** WebSocket subprotocol that selects this codec. */
  readonly subprotocol: string;
  /** Frames of this codec are binary (msgpack) or text (JSON). */
  readonly binary: boolean;
  /** Decodes a client frame; throws on malformed input. Reads `message` synchronously only. */
  decode(message: ArrayBuffer): unknown;
  encodeReply(reply: Reply): string | Uint8Array;
}

// fatal: RFC 6455 requires text frames to be valid UTF-8; a bad sequence is a malformed frame.
const utf8 = new TextDecoder('utf-8', { fatal: true });

export const jsonCodec: Codec = {
  name: 'json',
  subprotocol: 'wsgate.json',
  binary: false,
  decode: (message) => JSON.parse(utf8.decode(message)),
  encodeReply: (reply) => JSON.stringify(reply),
};

export const msgpackCodec: Codec = {
  name: 'msgpack',
  subprotocol: 'wsgate.msgpack',
  binary: true,
  decode: (message) => unpackr.unpack(new Uint8Array(message)),
  // pack() returns a view of msgpackr's shared buffer; the caller sends it before packing again.
  encodeReply: (reply) => packr.pack(reply),
};

export const codecs: readonly Codec[] = [jsonCodec, msgpackCodec];

/**
 * Picks the codec from a Sec-WebSocket-Protocol header: the first offered protocol we support wins;
 * no header means JSON; only unsupported protocols means null (the upgrade is refused).
 */
export function negotiateCodec(header: string): Codec | null {
  if (header === '') return jsonCodec;
  for (const offered of header.split(',')) {
    const name = offered.trim();
    for (const codec of codecs) if (codec.subprotocol === name) return codec;
  }
  return null;
}
