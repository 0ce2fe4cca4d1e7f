import { INVALID, PLAIN, escapeEnd, skipWs, utf8Sequence } from '../protocol/json-scan';

/**
 * A bounded, allocation-free scanner for the two JSON shapes on the Pusher door's client-event path:
 * a client frame `{"event":"client-…","channel":"…","data":"…"}` as pusher-js sends it, and a client
 * event's publish data `{"event":…,"data":…,"socket_id":…[,"user_id":…]}` as PusherWire frames it for
 * subscribers. Both are flat objects of known keys whose values are all strings, so finding where each
 * value lies is enough to copy it into the next frame.
 *
 * Why hand-written: the general path decodes the whole frame (a depth walk, a UTF-8 decode into a string,
 * JSON.parse into an object), stringifies the event again for the publish, and decodes that to frame it
 * for Pusher subscribers: three passes and some ten objects per event for what is a copy of three
 * spans. This walks the bytes once, validating as JSON.parse does (escapes, well-formed UTF-8), and
 * counts the UTF-16 length of string values so Pusher's data-size limit reads what the general path
 * reads. Anything else (other or repeated keys, non-string values, names with escapes or non-ASCII,
 * bytes that are not JSON) is left to the general path, which answers exactly as it always has.
 * bench/micro/pusher-scan.ts measures it against decodeBounded; test/pusher-scan.test.ts compares both
 * on generated frames.
 */

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

/**
 * Where one object's string fields lie. Extents include the quotes; `units` is the decoded string's
 * UTF-16 length (what `string.length` of JSON.parse's result is), `plain` whether the bytes between
 * the quotes are printable ASCII without escapes (then they are the string, one char per byte).
 */
export class StringFields {
  readonly start: Int32Array;
  readonly end: Int32Array;
  readonly units: Int32Array;
  readonly plain: Uint8Array;
  private readonly keys: readonly Uint8Array[];
  // The string scan's second results (a scan returns its end position).
  private lastUnits = 0;
  private lastPlain = false;

  constructor(keys: readonly string[]) {
    this.keys = keys.map(ascii);
    this.start = new Int32Array(keys.length);
    this.end = new Int32Array(keys.length);
    this.units = new Int32Array(keys.length);
    this.plain = new Uint8Array(keys.length);
  }

  has(field: number): boolean {
    return (this.start[field] as number) >= 0;
  }

  /**
   * Whether bytes [p, end) of `b` are, with optional whitespace around, one JSON object whose keys are
   * each one of this scanner's (none repeated, no other) and whose values are all strings.
   */
  scan(b: Uint8Array, p: number, end: number): boolean {
    this.start.fill(-1);
    p = skipWs(b, p, end);
    if (p >= end || b[p] !== 0x7b) return false;
    p = skipWs(b, p + 1, end);
    if (p < end && b[p] === 0x7d) return skipWs(b, p + 1, end) === end;
    for (;;) {
      if (p >= end || b[p] !== 0x22) return false;
      const keyEnd = this.string(b, p, end);
      if (keyEnd < 0 || !this.lastPlain) return false;
      const field = this.fieldOf(b, p + 1, keyEnd - 1);
      if (field < 0 || (this.start[field] as number) >= 0) return false; // unknown or repeated key
      p = skipWs(b, keyEnd, end);
      if (p >= end || b[p] !== 0x3a) return false;
      p = skipWs(b, p + 1, end);
      if (p >= end || b[p] !== 0x22) return false; // not a string: the general path decides
      const valueEnd = this.string(b, p, end);
      if (valueEnd < 0) return false;
      this.start[field] = p;
      this.end[field] = valueEnd;
      this.units[field] = this.lastUnits;
      this.plain[field] = this.lastPlain ? 1 : 0;
      p = skipWs(b, valueEnd, end);
      if (p >= end) return false;
      if (b[p] === 0x7d) return skipWs(b, p + 1, end) === end;
      if (b[p] !== 0x2c) return false;
      p = skipWs(b, p + 1, end);
    }
  }

  private fieldOf(b: Uint8Array, s: number, e: number): number {
    const keys = this.keys;
    for (let k = 0; k < keys.length; k++) {
      const key = keys[k] as Uint8Array;
      if (key.length !== e - s) continue;
      let i = 0;
      while (i < key.length && key[i] === b[s + i]) i++;
      if (i === key.length) return k;
    }
    return -1;
  }

  /**
   * A JSON string from its opening quote, validated as json-scan's scanJsonString does (its tables and
   * escape check); returns the position after the closing quote or INVALID, and leaves its UTF-16
   * length and plainness behind.
   */
  private string(b: Uint8Array, p: number, end: number): number {
    const first = ++p;
    let units = 0;
    for (;;) {
      const run = p;
      while (p < end && PLAIN[b[p] as number] === 1) p++;
      units += p - run;
      if (p >= end) return INVALID;
      const c = b[p] as number;
      if (c === 0x22) {
        this.lastUnits = units;
        this.lastPlain = units === p - first;
        return p + 1;
      }
      if (c === 0x5c) {
        p = escapeEnd(b, p, end);
        if (p === INVALID) return INVALID;
        units++; // every JSON escape is one UTF-16 unit (a surrogate pair is two escapes)
        continue;
      }
      if (c < 0x80) return INVALID; // control character
      const next = utf8Sequence(b, p, end);
      if (next === INVALID) return INVALID;
      units += next - p === 4 ? 2 : 1; // four bytes: outside the BMP, a surrogate pair
      p = next;
    }
  }
}

/** Client frame fields. */
export const C_EVENT = 0;
export const C_CHANNEL = 1;
export const C_DATA = 2;

/** Pusher's limit on an event name (frames.parseClientFrame). */
const MAX_EVENT_NAME = 200;
/** Longer than any channel name channelKind accepts: such a frame takes the general path. */
const MAX_CHANNEL_NAME = 200;
const CLIENT_PREFIX = ascii('client-');

/**
 * Reads a `client-*` frame in place. `frame()` is true only for a frame the general path would take as
 * a client event with these same event, channel and data strings: event and channel plain names, data
 * a string. Then the spans are in `fields` (C_EVENT, C_CHANNEL, C_DATA) until the next call.
 */
export class ClientEventScan {
  readonly fields = new StringFields(['event', 'channel', 'data']);

  frame(b: Uint8Array, end: number): boolean {
    const f = this.fields;
    if (!f.scan(b, 0, end) || !f.has(C_EVENT) || !f.has(C_CHANNEL) || !f.has(C_DATA)) return false;
    if (f.plain[C_EVENT] !== 1 || f.plain[C_CHANNEL] !== 1) return false;
    const es = (f.start[C_EVENT] as number) + 1;
    const eventLength = f.units[C_EVENT] as number;
    if (eventLength < CLIENT_PREFIX.length || eventLength > MAX_EVENT_NAME) return false;
    for (let i = 0; i < CLIENT_PREFIX.length; i++) if (b[es + i] !== CLIENT_PREFIX[i]) return false;
    return (f.units[C_CHANNEL] as number) <= MAX_CHANNEL_NAME;
  }
}

/** Event data fields. */
export const E_EVENT = 0;
export const E_DATA = 1;
export const E_SOCKET = 2;
export const E_USER = 3;

/**
 * Reads a publish's JSON data in place when it is a Pusher event whose fields are all strings
 * (`{"event","data"[,"socket_id"][,"user_id"]}`), the form client events are published in; the socket
 * id must be plain (PusherWire looks the socket up by it). Other data is framed the general way.
 */
export class EventDataScan {
  readonly fields = new StringFields(['event', 'data', 'socket_id', 'user_id']);
  // Data whose writer laid out the fields itself (expect): taken without a second walk of the same bytes.
  private expected: Uint8Array | null = null;
  private expectedEnd = 0;

  /**
   * Announces data the caller is writing at bytes [0, end) of `b` (a client event PusherChannels built
   * from spans ClientEventScan already validated); the caller fills the returned fields. The next data()
   * of exactly these bytes takes them as they are; any other call forgets them.
   */
  expect(b: Uint8Array, end: number): StringFields {
    this.expected = b;
    this.expectedEnd = end;
    this.fields.start.fill(-1);
    return this.fields;
  }

  data(b: Uint8Array, start: number, end: number): boolean {
    const f = this.fields;
    const known = b === this.expected && start === 0 && end === this.expectedEnd;
    this.expected = null;
    if (known) return true;
    if (!f.scan(b, start, end) || !f.has(E_EVENT) || !f.has(E_DATA)) return false;
    return !f.has(E_SOCKET) || f.plain[E_SOCKET] === 1;
  }
}
