/**
 * A validating JSON scanner over UTF-8 bytes: it finds where one value ends, or says the bytes are not
 * JSON (RFC 8259), without creating a single JS value.
 *
 * Why hand-written: the publish path only needs to know *that* the data is well-formed JSON and *where*
 * it lies, so it can copy those bytes straight into the delivery frame. JSON.parse (and every library
 * parser) builds the whole value on the heap to answer that, and no library validates in place over a
 * byte buffer without allocating. This walks the bytes once: a recursive descent whose depth is bounded
 * by the caller, strings checked for escapes and well-formed UTF-8 (no surrogate code points, no
 * overlong forms), numbers checked against the grammar. Anything it accepts, JSON.parse of the same
 * bytes (as UTF-8) accepts too (test/scan.test.ts compares both on generated inputs).
 */

/** Returned for bytes that are not a well-formed value. Every result below 0 is a refusal. */
export const INVALID = -1;
/** Returned when a value is well-formed as far as read but opens more arrays/objects than allowed. */
export const TOO_DEEP = -2;

// Byte classes for the scan: whitespace, and string bytes that need a closer look.
const WS = new Uint8Array(256);
WS[0x20] = WS[0x09] = WS[0x0a] = WS[0x0d] = 1;
const HEX = new Uint8Array(256);
for (let c = 0x30; c <= 0x39; c++) HEX[c] = 1;
for (let c = 0x41; c <= 0x46; c++) HEX[c] = HEX[c + 0x20] = 1;
/** 1: plain string byte (printable ASCII other than `"` and `\`). */
export const PLAIN = new Uint8Array(256);
for (let c = 0x20; c < 0x80; c++) PLAIN[c] = 1;
PLAIN[0x22] = PLAIN[0x5c] = 0;

/** Position of the first non-whitespace byte at or after `p` (may be `end`). */
export function skipWs(b: Uint8Array, p: number, end: number): number {
  while (p < end && WS[b[p] as number] === 1) p++;
  return p;
}

/**
 * Scans one JSON value starting exactly at `p` (no leading whitespace). Returns the position just
 * after it, INVALID, or TOO_DEEP (whichever the bytes show first, reading left to right). `depth` is
 * how many more arrays/objects may open (0: scalars only).
 */
export function scanJsonValue(b: Uint8Array, p: number, end: number, depth: number): number {
  if (p >= end) return INVALID;
  const c = b[p] as number;
  switch (c) {
    case 0x22: // "
      return scanJsonString(b, p, end);
    case 0x7b: // {
      return depth > 0 ? scanObject(b, p + 1, end, depth - 1) : TOO_DEEP;
    case 0x5b: // [
      return depth > 0 ? scanArray(b, p + 1, end, depth - 1) : TOO_DEEP;
    case 0x74: // true
      return p + 4 <= end && b[p + 1] === 0x72 && b[p + 2] === 0x75 && b[p + 3] === 0x65 ? p + 4 : INVALID;
    case 0x66: // false
      return p + 5 <= end && b[p + 1] === 0x61 && b[p + 2] === 0x6c && b[p + 3] === 0x73 && b[p + 4] === 0x65 ? p + 5 : INVALID;
    case 0x6e: // null
      return p + 4 <= end && b[p + 1] === 0x75 && b[p + 2] === 0x6c && b[p + 3] === 0x6c ? p + 4 : INVALID;
    default:
      return c === 0x2d || (c >= 0x30 && c <= 0x39) ? scanNumber(b, p, end) : INVALID;
  }
}

function scanObject(b: Uint8Array, p: number, end: number, depth: number): number {
  p = skipWs(b, p, end);
  if (p < end && b[p] === 0x7d) return p + 1;
  for (;;) {
    if (p >= end || b[p] !== 0x22) return INVALID;
    p = scanJsonString(b, p, end);
    if (p === INVALID) return INVALID;
    p = skipWs(b, p, end);
    if (p >= end || b[p] !== 0x3a) return INVALID;
    p = scanJsonValue(b, skipWs(b, p + 1, end), end, depth);
    if (p < 0) return p;
    p = skipWs(b, p, end);
    if (p >= end) return INVALID;
    const c = b[p];
    if (c === 0x7d) return p + 1;
    if (c !== 0x2c) return INVALID;
    p = skipWs(b, p + 1, end);
  }
}

function scanArray(b: Uint8Array, p: number, end: number, depth: number): number {
  p = skipWs(b, p, end);
  if (p < end && b[p] === 0x5d) return p + 1;
  for (;;) {
    p = scanJsonValue(b, p, end, depth);
    if (p < 0) return p;
    p = skipWs(b, p, end);
    if (p >= end) return INVALID;
    const c = b[p];
    if (c === 0x5d) return p + 1;
    if (c !== 0x2c) return INVALID;
    p = skipWs(b, p + 1, end);
  }
}

function digits(b: Uint8Array, p: number, end: number): number {
  while (p < end && (b[p] as number) >= 0x30 && (b[p] as number) <= 0x39) p++;
  return p;
}

/** `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?` */
function scanNumber(b: Uint8Array, p: number, end: number): number {
  if (b[p] === 0x2d) p++;
  if (p >= end) return INVALID;
  const first = b[p] as number;
  if (first === 0x30) p++;
  else if (first >= 0x31 && first <= 0x39) p = digits(b, p + 1, end);
  else return INVALID;
  if (p < end && b[p] === 0x2e) {
    const q = digits(b, p + 1, end);
    if (q === p + 1) return INVALID;
    p = q;
  }
  if (p < end && (b[p] === 0x65 || b[p] === 0x45)) {
    p++;
    if (p < end && (b[p] === 0x2b || b[p] === 0x2d)) p++;
    const q = digits(b, p, end);
    if (q === p) return INVALID;
    p = q;
  }
  return p;
}

/**
 * Scans a string starting at its opening quote; returns the position after the closing quote. Escapes
 * must be JSON's; `\uXXXX` may encode a lone surrogate (JSON allows it), raw bytes must be well-formed
 * UTF-8 (which excludes encoded surrogates).
 */
export function scanJsonString(b: Uint8Array, p: number, end: number): number {
  p++;
  for (;;) {
    while (p < end && PLAIN[b[p] as number] === 1) p++;
    if (p >= end) return INVALID;
    const c = b[p] as number;
    if (c === 0x22) return p + 1;
    if (c === 0x5c) {
      p = escapeEnd(b, p, end);
      if (p === INVALID) return INVALID;
      continue;
    }
    if (c < 0x80) return INVALID; // control character
    p = utf8Sequence(b, p, end);
    if (p === INVALID) return INVALID;
  }
}

/** The position after the escape sequence whose backslash is at `p` (one of JSON's), or INVALID. */
export function escapeEnd(b: Uint8Array, p: number, end: number): number {
  if (p + 1 >= end) return INVALID;
  const e = b[p + 1] as number;
  if (e === 0x75) {
    if (p + 6 > end || HEX[b[p + 2] as number] === 0 || HEX[b[p + 3] as number] === 0 || HEX[b[p + 4] as number] === 0 || HEX[b[p + 5] as number] === 0) return INVALID;
    return p + 6;
  }
  return e === 0x22 || e === 0x5c || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74 ? p + 2 : INVALID;
}

/**
 * Checks one multi-byte UTF-8 sequence starting at `p` (lead byte ≥ 0x80) per RFC 3629's table:
 * no overlong forms, no surrogates, nothing above U+10FFFF. Returns the position after it.
 */
export function utf8Sequence(b: Uint8Array, p: number, end: number): number {
  const c = b[p] as number;
  let n: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) n = 1;
  else if (c >= 0xe0 && c <= 0xef) {
    n = 2;
    if (c === 0xe0) lo = 0xa0;
    else if (c === 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 3;
    if (c === 0xf0) lo = 0x90;
    else if (c === 0xf4) hi = 0x8f;
  } else return INVALID;
  if (p + n >= end) return INVALID;
  const second = b[p + 1] as number;
  if (second < lo || second > hi) return INVALID;
  for (let i = 2; i <= n; i++) {
    const x = b[p + i] as number;
    if (x < 0x80 || x > 0xbf) return INVALID;
  }
  return p + n + 1;
}

/** Checks that bytes [p, end) are well-formed UTF-8. */
export function isUtf8(b: Uint8Array, p: number, end: number): boolean {
  while (p < end) {
    if ((b[p] as number) < 0x80) p++;
    else {
      p = utf8Sequence(b, p, end);
      if (p === INVALID) return false;
    }
  }
  return true;
}
