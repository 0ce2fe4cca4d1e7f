import { ErrorCode, GatewayError } from './codes';
import { MALFORMED, TOO_DEEP, jsonDepth, msgpackDepth } from './depth';
import { packr, unpackr } from './msgpack';

export type CodecName = 'json' | 'msgpack';

/** A reply or notice the server sends to one connection (not a delivery: those are built by DeliveryEncoder). */
/** One message of a history reply: its sequence and data. */
export interface HistoryMessage {
  readonly s: number;
  readonly d: unknown;
}

/** One member of a topic's presence: a subscription, by connection. */
export interface PresenceEntry {
  /** Connection id, unique cluster-wide. */
  readonly client: string;
  /** The token's `sub`; '' when anonymous. */
  readonly user: string;
  /** The token's `info` claim when it is a JSON object of bounded size. */
  readonly info?: Readonly<Record<string, unknown>>;
}

/** presence_stats: connections and distinct users present; `unlisted` members are counted but not listed (maxPresence). */
export interface PresenceStats {
  readonly clients: number;
  readonly users: number;
  readonly unlisted: number;
}

export type Reply =
  | ({ op: 'ok'; id?: number; seq?: number; epoch?: string; recovered?: boolean; messages?: readonly HistoryMessage[]; presence?: readonly PresenceEntry[] } & Partial<PresenceStats>)
  | { op: 'err'; id?: number; code: string; reason: string }
  | { op: 'dropped'; n: number }
  /** A subscription the server added or ended (POST /subscribe, /unsubscribe, token refresh: with its reason). */
  | { op: 'subscribed' | 'unsubscribed'; t: string; reason?: string };

/** How one connection's frames are decoded and its replies encoded. */
export interface Codec {
  readonly name: CodecName;
  /** WebSocket subprotocol that selects this codec. */
  readonly subprotocol: string;
  /** Frames of this codec are binary (msgpack) or text (JSON). */
  readonly binary: boolean;
  /**
   * Decodes a client frame whose command's data may nest `maxDepth` levels; throws on malformed input,
   * returns a GatewayError (never a decodable value) when it nests deeper. Reads `frame` synchronously
   * only. `scanned`: the publish scanner already walked the whole frame and found it well-formed and
   * bounded (PublishReader.wellFormed), so it is not walked again.
   */
  decode(frame: Uint8Array, maxDepth: number, scanned: boolean): unknown;
  encodeReply(reply: Reply): string | Uint8Array;
}

// fatal: RFC 6455 requires text frames to be valid UTF-8; a bad sequence is a malformed frame.
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes JSON text (UTF-8) or msgpack that nests at most `limit` levels in all, data at most `maxDepth`.
 * Throws on malformed input (and msgpack types wsgate does not accept); returns the GatewayError to
 * answer with, never a decodable value, when it nests deeper. The scan runs first (unless `scanned`
 * says a validating scanner already walked these bytes within the bound), so the decoder and every
 * later re-encode only ever see bounded input.
 */
export function decodeBounded(bytes: Uint8Array, msgpack: boolean, limit: number, maxDepth: number, scanned = false): unknown {
  const depth = scanned ? 0 : msgpack ? msgpackDepth(bytes, limit) : jsonDepth(bytes, limit);
  if (depth === TOO_DEEP) return new GatewayError(ErrorCode.BadFrame, `data nests deeper than ${maxDepth} levels`);
  if (depth === MALFORMED) throw new SyntaxError('malformed or unsupported msgpack');
  return msgpack ? unpackr.unpack(bytes) : JSON.parse(utf8.decode(bytes));
}

export const jsonCodec: Codec = {
  name: 'json',
  subprotocol: 'wsgate.json',
  binary: false,
  // The command object is one level itself.
  decode: (frame, maxDepth, scanned) => decodeBounded(frame, false, maxDepth + 1, maxDepth, scanned),
  encodeReply: (reply) => JSON.stringify(reply),
};

export const msgpackCodec: Codec = {
  name: 'msgpack',
  subprotocol: 'wsgate.msgpack',
  binary: true,
  decode: (frame, maxDepth, scanned) => decodeBounded(frame, true, maxDepth + 1, maxDepth, scanned),
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
