import { INVALID, scanJsonString, scanJsonValue, skipWs } from './json-scan';
import { scanMsgpackString, scanMsgpackValue } from './msgpack-scan';
import { isTopicBytes } from './topic';

/**
 * Finds a publish's fields in the received bytes, so the hot path needs no decoded command: the topic's
 * bytes, the id and the data's extent (copied as is into the delivery frame). Only the plain shapes are
 * taken here: a socket `{"op":"pub","topic":…,"data":…[,"id":…]}` and a `POST /publish` item
 * `{"topic":…,"data":…}` (or an array of them), with no other or repeated keys, a valid topic, an integer
 * id and well-formed data. Anything else, valid or not, answers false and the caller decodes the frame
 * the general way, which replies exactly as it always has (bad_frame for malformed data included).
 */

const OP = 0;
const TOPIC = 1;
const ID = 2;
const DATA = 3;
const FIELDS = 4;

/** Largest id written as digits that is certainly below 2^53 (15 digits). */
const MAX_ID_DIGITS = 15;

/** Extents of one command object's known fields (-1: absent). Topic extents are the name's bytes. */
class Fields {
  readonly start = new Int32Array(FIELDS);
  readonly end = new Int32Array(FIELDS);

  clear(): void {
    const s = this.start;
    s[OP] = s[TOPIC] = s[ID] = s[DATA] = -1;
  }

  set(field: number, start: number, end: number): boolean {
    if (field < 0 || this.start[field] !== -1) return false; // unknown or repeated key
    this.start[field] = start;
    this.end[field] = end;
    return true;
  }
}

/** The field a key's bytes [s, e) name, or -1. */
function fieldOf(b: Uint8Array, s: number, e: number): number {
  const n = e - s;
  const c = b[s];
  if (n === 2 && c === 0x6f && b[s + 1] === 0x70) return OP; // op
  if (n === 2 && c === 0x69 && b[s + 1] === 0x64) return ID; // id
  if (n === 4 && c === 0x64 && b[s + 1] === 0x61 && b[s + 2] === 0x74 && b[s + 3] === 0x61) return DATA; // data
  if (n === 5 && c === 0x74 && b[s + 1] === 0x6f && b[s + 2] === 0x70 && b[s + 3] === 0x69 && b[s + 4] === 0x63) return TOPIC; // topic
  return -1;
}

/** A JSON object at `p` whose keys are all known fields; returns the position after it or INVALID. */
function jsonFields(b: Uint8Array, p: number, end: number, depth: number, f: Fields): number {
  f.clear();
  if (p >= end || b[p] !== 0x7b) return INVALID;
  p = skipWs(b, p + 1, end);
  if (p < end && b[p] === 0x7d) return p + 1;
  for (;;) {
    if (p >= end || b[p] !== 0x22) return INVALID;
    const keyEnd = scanJsonString(b, p, end);
    if (keyEnd < 0) return INVALID;
    const field = fieldOf(b, p + 1, keyEnd - 1);
    p = skipWs(b, keyEnd, end);
    if (p >= end || b[p] !== 0x3a) return INVALID;
    const v = skipWs(b, p + 1, end);
    p = scanJsonValue(b, v, end, depth);
    if (p < 0) return INVALID;
    // The topic is kept without its quotes (it holds no escapes: isTopicBytes refuses `\`); a topic
    // that is not a string is left to the general path's error.
    const topic = field === TOPIC;
    if (topic && b[v] !== 0x22) return INVALID;
    if (!f.set(field, topic ? v + 1 : v, topic ? p - 1 : p)) return INVALID;
    p = skipWs(b, p, end);
    if (p >= end) return INVALID;
    if (b[p] === 0x7d) return p + 1;
    if (b[p] !== 0x2c) return INVALID;
    p = skipWs(b, p + 1, end);
  }
}

/** Start of a msgpack str's bytes whose header is at `p` (the caller has scanned it). */
function strContent(b: Uint8Array, p: number): number {
  const t = b[p] as number;
  return (t & 0xe0) === 0xa0 ? p + 1 : t === 0xd9 ? p + 2 : t === 0xda ? p + 3 : p + 5;
}

const FIXMAP = 0x80;
const FIXARRAY = 0x90;

/** Bytes of a fix or 16-bit map (fix: FIXMAP) or array (FIXARRAY) header at `p`; 0 when `p` holds neither. */
function smallHeader(b: Uint8Array, p: number, end: number, fix: number): number {
  const t = b[p] as number;
  if ((t & 0xf0) === fix) return 1;
  return t === (fix === FIXMAP ? 0xde : 0xdc) && p + 3 <= end ? 3 : 0;
}

/** The entry count of the header smallHeader accepted at `p`. */
function smallCount(b: Uint8Array, p: number): number {
  const t = b[p] as number;
  return (t & 0xe0) === 0x80 ? t & 0x0f : ((b[p + 1] as number) << 8) | (b[p + 2] as number);
}

/** A msgpack map at `p` whose keys are all known fields; returns the position after it or INVALID. */
function msgpackFields(b: Uint8Array, p: number, end: number, depth: number, f: Fields): number {
  f.clear();
  if (p >= end) return INVALID;
  // A command has four keys at most: a map32 is not a plain command.
  const header = smallHeader(b, p, end, FIXMAP);
  if (header === 0) return INVALID;
  const n = smallCount(b, p);
  p += header;
  for (let i = 0; i < n; i++) {
    const keyEnd = scanMsgpackString(b, p, end);
    if (keyEnd < 0) return INVALID;
    const field = fieldOf(b, strContent(b, p), keyEnd);
    const v = keyEnd;
    p = scanMsgpackValue(b, v, end, depth);
    if (p < 0) return INVALID;
    const topic = field === TOPIC;
    if (topic && scanMsgpackString(b, v, end) !== p) return INVALID;
    if (!f.set(field, topic ? strContent(b, v) : v, p)) return INVALID;
  }
  return p;
}

/** A non-negative integer id, or -1 when it is not a plain one. */
function jsonId(b: Uint8Array, s: number, e: number): number {
  const n = e - s;
  if (n < 1 || n > MAX_ID_DIGITS || (n > 1 && b[s] === 0x30)) return -1;
  let v = 0;
  for (let i = s; i < e; i++) {
    const d = (b[i] as number) - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

function msgpackId(b: Uint8Array, s: number, e: number): number {
  const t = b[s] as number;
  if (t < 0x80) return t;
  if (t === 0xcc && e === s + 2) return b[s + 1] as number;
  if (t === 0xcd && e === s + 3) return ((b[s + 1] as number) << 8) | (b[s + 2] as number);
  if (t === 0xce && e === s + 5) return (b[s + 1] as number) * 0x1000000 + (((b[s + 2] as number) << 16) | ((b[s + 3] as number) << 8) | (b[s + 4] as number));
  return -1;
}

/**
 * One publish located in a buffer: a socket `pub` (with its id) or the items of a `POST /publish` body.
 * A single instance is refilled per frame; its positions are valid while the scanned buffer is.
 */
export class PublishScan {
  private readonly fields = new Fields();
  /** The command's id; -1 when it has none. */
  id = -1;
  /**
   * After socketPub: the whole frame is one well-formed command object whose keys are all fields known
   * here and whose values nest within the bound, plain publish or not. A decode of it needs no walk of
   * its own to bound or check it again.
   */
  wellFormed = false;
  /** Items found: [topicStart, topicEnd, dataStart, dataEnd] per item. */
  count = 0;
  private readonly items: Int32Array;

  constructor(
    private readonly maxTopicLength: number,
    /** Arrays/objects the data may nest. */
    private readonly maxDepth: number,
    maxItems = 1,
  ) {
    this.items = new Int32Array(4 * maxItems);
  }

  topicStart(i: number): number {
    return this.items[4 * i] as number;
  }
  topicEnd(i: number): number {
    return this.items[4 * i + 1] as number;
  }
  dataStart(i: number): number {
    return this.items[4 * i + 2] as number;
  }
  dataEnd(i: number): number {
    return this.items[4 * i + 3] as number;
  }

  /** A socket frame `{"op":"pub",…}` (JSON text or msgpack); true when it is a plain publish. */
  socketPub(b: Uint8Array, end: number, json: boolean): boolean {
    const f = this.fields;
    const p = json ? jsonFields(b, skipWs(b, 0, end), end, this.maxDepth, f) : msgpackFields(b, 0, end, this.maxDepth, f);
    this.wellFormed = p >= 0 && (json ? skipWs(b, p, end) : p) === end;
    if (!this.wellFormed) return false;
    const op = f.start[OP] as number;
    if (op === -1 || f.end[OP] !== op + (json ? 5 : 4)) return false;
    if (json ? b[op] !== 0x22 || b[op + 4] !== 0x22 : b[op] !== 0xa3) return false;
    if (b[op + 1] !== 0x70 || b[op + 2] !== 0x75 || b[op + 3] !== 0x62) return false; // "pub"
    const idStart = f.start[ID] as number;
    this.id = idStart === -1 ? -1 : json ? jsonId(b, idStart, f.end[ID] as number) : msgpackId(b, idStart, f.end[ID] as number);
    if (idStart !== -1 && this.id === -1) return false;
    this.count = 0;
    return this.item(b);
  }

  /** A `POST /publish` body: one item or an array of 1..capacity items, all plain. */
  httpBody(b: Uint8Array, end: number, json: boolean): boolean {
    const capacity = this.items.length / 4;
    this.count = 0;
    this.id = -1;
    let p = json ? skipWs(b, 0, end) : 0;
    if (p >= end) return false;
    const t = b[p] as number;
    if (json ? t === 0x7b : (t & 0xf0) === 0x80 || t === 0xde) {
      p = this.bodyItem(b, p, end, json);
      return p >= 0 && (json ? skipWs(b, p, end) : p) === end;
    }
    if (json) {
      if (t !== 0x5b) return false;
      p = skipWs(b, p + 1, end);
      for (;;) {
        if (this.count === capacity) return false;
        p = this.bodyItem(b, p, end, true);
        if (p < 0) return false;
        p = skipWs(b, p, end);
        if (p >= end) return false;
        if (b[p] === 0x5d) return skipWs(b, p + 1, end) === end;
        if (b[p] !== 0x2c) return false;
        p = skipWs(b, p + 1, end);
      }
    }
    const header = smallHeader(b, p, end, FIXARRAY);
    if (header === 0) return false;
    const n = smallCount(b, p);
    p += header;
    if (n === 0 || n > capacity) return false;
    for (let i = 0; i < n && p >= 0; i++) p = this.bodyItem(b, p, end, false);
    return p === end;
  }

  /** One body item at `p`: an object with a topic and data only. Returns the position after it or INVALID. */
  private bodyItem(b: Uint8Array, p: number, end: number, json: boolean): number {
    const f = this.fields;
    p = json ? jsonFields(b, p, end, this.maxDepth, f) : msgpackFields(b, p, end, this.maxDepth, f);
    return p >= 0 && f.start[OP] === -1 && f.start[ID] === -1 && this.item(b) ? p : INVALID;
  }

  /** Records the current fields as the next item when its topic and data are present and plain. */
  private item(b: Uint8Array): boolean {
    const f = this.fields;
    const ts = f.start[TOPIC] as number;
    const te = f.end[TOPIC] as number;
    if (ts === -1 || f.start[DATA] === -1 || !isTopicBytes(b, ts, te, this.maxTopicLength)) return false;
    const at = 4 * this.count++;
    this.items[at] = ts;
    this.items[at + 1] = te;
    this.items[at + 2] = f.start[DATA] as number;
    this.items[at + 3] = f.end[DATA] as number;
    return true;
  }
}
