import { ErrorCode, GatewayError } from './codes';

// A lookup table beats a RegExp here: topics are checked on every sub/pub, and a table walk neither
// allocates nor backtracks.
const ALLOWED = new Uint8Array(128);
for (const range of ['AZ', 'az', '09']) {
  for (let c = range.charCodeAt(0); c <= range.charCodeAt(1); c++) ALLOWED[c] = 1;
}
for (const ch of '._-:@/') ALLOWED[ch.charCodeAt(0)] = 1;

/** Whether bytes [start, end) are a valid topic name (the byte-level twin of checkTopic). */
export function isTopicBytes(b: Uint8Array, start: number, end: number, maxLength: number): boolean {
  if (end <= start || end - start > maxLength) return false;
  for (let i = start; i < end; i++) {
    const c = b[i] as number;
    if (c >= 128 || ALLOWED[c] === 0) return false;
  }
  return true;
}

/** Returns null when `topic` is a valid topic name, else the error to reply with. */
export function checkTopic(topic: unknown, maxLength: number): GatewayError | null {
  if (typeof topic !== 'string') return new GatewayError(ErrorCode.BadRequest, 'topic must be a string');
  if (topic.length === 0 || topic.length > maxLength) {
    return new GatewayError(ErrorCode.InvalidTopic, `topic length must be 1..${maxLength}`);
  }
  for (let i = 0; i < topic.length; i++) {
    const c = topic.charCodeAt(i);
    if (c >= 128 || ALLOWED[c] === 0) {
      return new GatewayError(ErrorCode.InvalidTopic, 'topic may only contain A-Z a-z 0-9 . _ - : @ /');
    }
  }
  return null;
}
