import { ErrorCode, GatewayError } from '../protocol/codes';
import type { StreamPosition } from '../protocol/commands';

/**
 * Topics one SSE stream may hold: its event id carries a position for each, so this bounds the id
 * (at most ~2.5 KB with the longest epochs, ~16 bytes a topic with the gateway's own).
 */
export const SSE_MAX_TOPICS = 32;
/** The longest Last-Event-ID read; longer ones are refused (400) before any parsing. */
export const MAX_CURSOR_LENGTH = SSE_MAX_TOPICS * 78;

// An epoch (the gateway's: base64url; a cluster broker's: base64url and base36) and a seq in base 36.
const ENTRY = /^([A-Za-z0-9_-]{1,64})\.([0-9a-z]{1,11})$/;

/**
 * An SSE stream's position in every one of its topics, as its events' `id:` (docs/protocol.md):
 * entries joined by `,`, the i-th for the stream's i-th topic (`?topics=` in order, then the topics the
 * server added), each `<epoch>.<seq in base 36>`, or empty while the stream has no position there.
 */
export class Cursor {
  private readonly entries: string[];

  constructor(from: readonly (StreamPosition | undefined)[]) {
    this.entries = from.map((p) => (p === undefined ? '' : entry(p.epoch, p.seq)));
  }

  set(i: number, epoch: string, seq: number): void {
    while (this.entries.length < i) this.entries.push('');
    this.entries[i] = entry(epoch, seq);
  }

  /** Moves topic `i` to `seq` in the epoch it has (a delivery or a replayed message). */
  advance(i: number, seq: number): void {
    const e = this.entries[i];
    if (e === undefined || e === '') return;
    this.entries[i] = e.slice(0, e.lastIndexOf('.') + 1) + seq.toString(36);
  }

  toString(): string {
    return this.entries.join(',');
  }
}

const entry = (epoch: string, seq: number): string => epoch + '.' + seq.toString(36);

/** Reads a Last-Event-ID: the position per topic index, or the error (400) for one that is not a cursor. */
export function parseCursor(text: string): (StreamPosition | undefined)[] | GatewayError {
  if (text === '') return [];
  if (text.length > MAX_CURSOR_LENGTH) return bad(`longer than ${MAX_CURSOR_LENGTH} characters`);
  const parts = text.split(',');
  if (parts.length > SSE_MAX_TOPICS) return bad(`more than ${SSE_MAX_TOPICS} entries`);
  const out: (StreamPosition | undefined)[] = [];
  for (const part of parts) {
    if (part === '') {
      out.push(undefined);
      continue;
    }
    const m = ENTRY.exec(part);
    const seq = m === null ? NaN : parseInt(m[2] as string, 36);
    if (m === null || !Number.isSafeInteger(seq)) return bad(`entry "${part.slice(0, 80)}" is not <epoch>.<seq>`);
    out.push({ epoch: m[1] as string, seq });
  }
  return out;
}

const bad = (why: string): GatewayError => new GatewayError(ErrorCode.BadSince, `Last-Event-ID is not a wsgate cursor: ${why}`);
