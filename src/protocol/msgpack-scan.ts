import { INVALID, TOO_DEEP, isUtf8 } from './json-scan';

/**
 * A validating msgpack scanner: finds where one value ends without decoding it. Hand-written for the
 * same reason as the JSON scanner (json-scan.ts): msgpackr and every other decoder build the value on
 * the heap, and the publish path only needs its extent to copy the bytes into the delivery frame.
 *
 * It accepts a conservative subset of what msgpackr decodes to the same thing it would re-encode: every
 * type except extensions (msgpackr turns some into Dates or throws on others), map keys that are strings
 * (msgpackr would turn other keys into strings), strings that are well-formed UTF-8 (msgpackr would
 * replace bad bytes). A result below 0 means "not accepted here": the caller then decodes with msgpackr, which
 * decides exactly as before.
 */

function u16(b: Uint8Array, p: number): number {
  return ((b[p] as number) << 8) | (b[p + 1] as number);
}

function u32(b: Uint8Array, p: number): number {
  return (b[p] as number) * 0x1000000 + (((b[p + 1] as number) << 16) | ((b[p + 2] as number) << 8) | (b[p + 3] as number));
}

/** Scans a str whose type byte is at `p`; returns the position after it or INVALID. */
export function scanMsgpackString(b: Uint8Array, p: number, end: number): number {
  if (p >= end) return INVALID;
  const t = b[p] as number;
  let n: number;
  let q: number;
  if ((t & 0xe0) === 0xa0) {
    n = t & 0x1f;
    q = p + 1;
  } else if (t === 0xd9) {
    if (p + 2 > end) return INVALID;
    n = b[p + 1] as number;
    q = p + 2;
  } else if (t === 0xda) {
    if (p + 3 > end) return INVALID;
    n = u16(b, p + 1);
    q = p + 3;
  } else if (t === 0xdb) {
    if (p + 5 > end) return INVALID;
    n = u32(b, p + 1);
    q = p + 5;
  } else return INVALID;
  if (q + n > end || !isUtf8(b, q, q + n)) return INVALID;
  return q + n;
}

/** Bytes a str/bin header at `p` announces, and where its content starts; -1 when `p` holds neither. */
export function msgpackStringStart(b: Uint8Array, p: number, end: number): number {
  if (p >= end) return INVALID;
  const t = b[p] as number;
  if ((t & 0xe0) === 0xa0) return p + 1;
  if (t === 0xd9) return p + 2;
  if (t === 0xda) return p + 3;
  if (t === 0xdb) return p + 5;
  return INVALID;
}

/**
 * Scans one msgpack value starting at `p`; returns the position just after it, INVALID, or TOO_DEEP.
 * `depth` is how many more arrays/maps may open (0: scalars only).
 */
export function scanMsgpackValue(b: Uint8Array, p: number, end: number, depth: number): number {
  if (p >= end) return INVALID;
  const t = b[p] as number;
  if (t < 0x80 || t >= 0xe0) return p + 1; // fixints
  if (t < 0x90) return depth > 0 ? scanMap(b, p + 1, end, t & 0x0f, depth - 1) : TOO_DEEP;
  if (t < 0xa0) return depth > 0 ? scanItems(b, p + 1, end, t & 0x0f, depth - 1) : TOO_DEEP;
  if (t < 0xc0) return scanMsgpackString(b, p, end);
  let q: number;
  switch (t) {
    case 0xc0: // nil
    case 0xc2: // false
    case 0xc3: // true
      return p + 1;
    case 0xcc: // uint8, int8
    case 0xd0:
      q = p + 2;
      break;
    case 0xcd: // uint16, int16
    case 0xd1:
      q = p + 3;
      break;
    case 0xce: // uint32, int32, float32
    case 0xd2:
    case 0xca:
      q = p + 5;
      break;
    case 0xcf: // uint64, int64, float64
    case 0xd3:
    case 0xcb:
      q = p + 9;
      break;
    case 0xc4: // bin8/16/32
      q = p + 2 > end ? INVALID : p + 2 + (b[p + 1] as number);
      break;
    case 0xc5:
      q = p + 3 > end ? INVALID : p + 3 + u16(b, p + 1);
      break;
    case 0xc6:
      q = p + 5 > end ? INVALID : p + 5 + u32(b, p + 1);
      break;
    case 0xd9: // str8/16/32
    case 0xda:
    case 0xdb:
      return scanMsgpackString(b, p, end);
    case 0xdc: // array16/32
      return depth === 0 ? TOO_DEEP : p + 3 <= end ? scanItems(b, p + 3, end, u16(b, p + 1), depth - 1) : INVALID;
    case 0xdd:
      return depth === 0 ? TOO_DEEP : p + 5 <= end ? scanItems(b, p + 5, end, u32(b, p + 1), depth - 1) : INVALID;
    case 0xde: // map16/32
      return depth === 0 ? TOO_DEEP : p + 3 <= end ? scanMap(b, p + 3, end, u16(b, p + 1), depth - 1) : INVALID;
    case 0xdf:
      return depth === 0 ? TOO_DEEP : p + 5 <= end ? scanMap(b, p + 5, end, u32(b, p + 1), depth - 1) : INVALID;
    default: // 0xc1 (never used) and the extension types
      return INVALID;
  }
  return q === INVALID || q > end ? INVALID : q;
}

function scanItems(b: Uint8Array, p: number, end: number, n: number, depth: number): number {
  // Every item takes at least one byte: a count beyond the rest of the buffer is a lie, refused at once.
  if (n > end - p) return INVALID;
  for (let i = 0; i < n && p >= 0; i++) p = scanMsgpackValue(b, p, end, depth);
  return p;
}

function scanMap(b: Uint8Array, p: number, end: number, n: number, depth: number): number {
  if (2 * n > end - p) return INVALID;
  for (let i = 0; i < n; i++) {
    p = scanMsgpackString(b, p, end);
    if (p === INVALID) return INVALID;
    p = scanMsgpackValue(b, p, end, depth);
    if (p < 0) return p;
  }
  return p;
}
