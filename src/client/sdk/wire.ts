import { Packr, Unpackr } from 'msgpackr';
import type { ServerCode } from './errors';

export type CodecName = 'json' | 'msgpack';

/** A position in a topic's stream: the last sequence seen within an epoch. */
export interface StreamPosition {
  readonly seq: number;
  readonly epoch: string;
}

/** One member of a topic's presence (docs/protocol.md, presence). */
export interface PresenceMember {
  /** The connection's id, unique in the cluster. */
  readonly client: string;
  /** The token's `sub`; '' when anonymous. */
  readonly user: string;
  /** The token's `info` claim, when it is a small JSON object. */
  readonly info?: Readonly<Record<string, unknown>>;
}

/** A retained message as the history op returns it. */
export interface HistoryMessage {
  readonly seq: number;
  readonly data: unknown;
}

/** The extra fields an `ok` may carry, by command (presence, presence_stats, history). */
export interface OkDetails {
  readonly presence?: readonly PresenceMember[];
  readonly clients?: number;
  readonly users?: number;
  readonly unlisted?: number;
  readonly messages?: readonly HistoryMessage[];
}

/** What the server sends: a delivery, a reply, or a notice (docs/protocol.md). */
export type ServerFrame =
  | { readonly kind: 'delivery'; readonly topic: string; readonly seq: number; readonly data: unknown }
  /** A fossil delta turning the data bytes of delivery seq-1 into those of seq (docs/protocol.md, "Deltas"). */
  | { readonly kind: 'delta'; readonly topic: string; readonly seq: number; readonly delta: Uint8Array }
  | ({ readonly kind: 'ok'; readonly id: number | undefined; readonly seq: number | undefined; readonly epoch: string | undefined; readonly recovered: boolean | undefined } & OkDetails)
  | { readonly kind: 'join' | 'leave'; readonly topic: string; readonly member: PresenceMember }
  | { readonly kind: 'subscribed'; readonly topic: string }
  | { readonly kind: 'err'; readonly id: number | undefined; readonly code: ServerCode; readonly reason: string }
  | { readonly kind: 'dropped'; readonly n: number }
  | { readonly kind: 'reset'; readonly topic: string; readonly position: StreamPosition }
  | { readonly kind: 'unsubscribed'; readonly topic: string; readonly reason: string };

export type Command =
  | { op: 'sub'; topic: string; id: number; since?: StreamPosition; delta?: 'fossil' }
  | { op: 'unsub'; topic: string; id: number }
  | { op: 'pub'; topic: string; id: number; data: unknown }
  | { op: 'ping'; id: number }
  | { op: 'presence' | 'presence_stats'; topic: string; id: number }
  | { op: 'history'; topic: string; id: number; limit?: number; since?: StreamPosition }

  | { op: 'refresh'; token: string; id: number };

/** Encodes commands and decodes server frames for one codec. */
export interface WireCodec {
  readonly name: CodecName;
  readonly subprotocol: string;
  encode(cmd: Command): string | Uint8Array;
  /** Decodes a frame (string for text frames, bytes for binary ones); null when it is not a known shape. */
  decode(frame: string | Uint8Array): ServerFrame | null;
  /** The data bytes of a full delivery frame (the base of the next delta), or null when the frame is not laid out as wsgate writes it. */
  dataBytes(frame: string | Uint8Array, topic: string, seq: number): Uint8Array | null;
  /** Decodes data bytes (a delta's result) into a value. */
  decodeData(bytes: Uint8Array): unknown;
}

// Plain maps, no record extension: the same options as the server's msgpackr instances.
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const utf8 = new TextDecoder();

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const optNumber = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

function isMember(v: unknown): v is PresenceMember {
  return isRecord(v) && typeof v.client === 'string' && typeof v.user === 'string' && (v.info === undefined || isRecord(v.info));
}

/** The optional fields of an `ok`, kept only when well-formed. */
function details(v: Record<string, unknown>): OkDetails {
  const d: { -readonly [K in keyof OkDetails]: OkDetails[K] } = {};
  if (Array.isArray(v.presence) && v.presence.every(isMember)) d.presence = v.presence;
  for (const k of ['clients', 'users', 'unlisted'] as const) if (typeof v[k] === 'number') d[k] = v[k];
  if (Array.isArray(v.messages)) d.messages = v.messages.filter(isRecord).map((m) => ({ seq: optNumber(m.s) ?? 0, data: m.d }));
  return d;
}

/** Turns a decoded map into a typed frame; a shape this SDK does not know gives null. */
function classify(v: unknown): ServerFrame | null {
  if (!isRecord(v)) return null;
  if (typeof v.t === 'string' && typeof v.s === 'number') {
    if (v.delta !== true) return { kind: 'delivery', topic: v.t, seq: v.s, data: v.d };
    // On JSON the delta's bytes are the string's characters (U+0000..U+00FF); on msgpack a bin.
    if (typeof v.d === 'string') return { kind: 'delta', topic: v.t, seq: v.s, delta: latin1Bytes(v.d) };
    return v.d instanceof Uint8Array ? { kind: 'delta', topic: v.t, seq: v.s, delta: v.d } : null;
  }
  switch (v.op) {
    case 'ok':
      return {
        kind: 'ok',
        id: optNumber(v.id),
        seq: optNumber(v.seq),
        epoch: typeof v.epoch === 'string' ? v.epoch : undefined,
        recovered: typeof v.recovered === 'boolean' ? v.recovered : undefined,
        ...details(v),
      };
    case 'join':
    case 'leave':
      return typeof v.t === 'string' && isMember(v.p) ? { kind: v.op, topic: v.t, member: v.p } : null;
    case 'subscribed':
      return typeof v.t === 'string' ? { kind: 'subscribed', topic: v.t } : null;
    case 'err':
      // Taken as the server's: a newer server's code this SDK does not list still passes through as sent.
      return { kind: 'err', id: optNumber(v.id), code: String(v.code) as ServerCode, reason: String(v.reason) };
    case 'dropped':
      return { kind: 'dropped', n: optNumber(v.n) ?? 0 };
    case 'reset':
      return typeof v.t === 'string' && isRecord(v.p) && typeof v.p.epoch === 'string' && typeof v.p.seq === 'number' ? { kind: 'reset', topic: v.t, position: { seq: v.p.seq, epoch: v.p.epoch } } : null;
    case 'unsubscribed':
      return typeof v.t === 'string' ? { kind: 'unsubscribed', topic: v.t, reason: typeof v.reason === 'string' ? v.reason : '' } : null;
    default:
      return null;
  }
}

function latin1Bytes(s: string): Uint8Array {
  const bytes = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
  return bytes;
}

const utf8Out = new TextEncoder();

/** JSON: the data is the frame's text after `{"t":"<topic>","s":<seq>,"d":` up to the final `}`. */
function jsonDataBytes(frame: string | Uint8Array, topic: string, seq: number): Uint8Array | null {
  const text = typeof frame === 'string' ? frame : utf8.decode(frame);
  const prefix = `{"t":"${topic}","s":${seq},"d":`;
  return text.startsWith(prefix) && text.endsWith('}') ? utf8Out.encode(text.slice(prefix.length, -1)) : null;
}

/** msgpack: the data is the frame's tail after the map header, "t", "s" and the key "d". */
function packDataBytes(frame: string | Uint8Array, topic: string, seq: number): Uint8Array | null {
  if (typeof frame === 'string' || frame[0] !== 0x83) return null;
  const seqBytes = seq < 0x80 ? 1 : seq < 0x100 ? 2 : seq < 0x10000 ? 3 : seq < 0x100000000 ? 5 : 9;
  const start = 7 + (topic.length < 32 ? 1 : 2) + topic.length + seqBytes;
  // A copy: the transport may reuse the frame's buffer.
  return frame[start - 2] === 0xa1 && frame[start - 1] === 0x64 && start <= frame.length ? frame.slice(start) : null;
}

const safely = (f: () => unknown): ServerFrame | null => {
  try {
    return classify(f());
  } catch {
    return null;
  }
};

export const jsonWire: WireCodec = {
  name: 'json',
  subprotocol: 'wsgate.json',
  encode: (cmd) => JSON.stringify(cmd),
  decode: (frame) => safely(() => JSON.parse(typeof frame === 'string' ? frame : utf8.decode(frame))),
  dataBytes: jsonDataBytes,
  decodeData: (bytes) => JSON.parse(utf8.decode(bytes)),
};

export const msgpackWire: WireCodec = {
  name: 'msgpack',
  subprotocol: 'wsgate.msgpack',
  // pack() returns a view of a shared buffer: copy it, because a transport may send asynchronously.
  // (new Uint8Array copies; Node's Buffer#slice would not.)
  encode: (cmd) => new Uint8Array(packr.pack(cmd)),
  decode: (frame) => (typeof frame === 'string' ? null : safely(() => unpackr.unpack(frame))),
  dataBytes: packDataBytes,
  decodeData: (bytes) => unpackr.unpack(bytes),
};

export const wireCodec = (name: CodecName): WireCodec => (name === 'msgpack' ? msgpackWire : jsonWire);
