import type { HttpResponse } from 'uWebSockets.js';
import type { Session } from '../session/session';
import { Cursor } from './cursor';
import type { StreamPosition } from '../protocol/commands';

/**
 * One open SSE response: its session, its topics in cursor order and the cursor itself, and how much
 * it has written since a write last went out without queueing (uWS tells no more about an HTTP
 * response's buffer: a write returns false once anything is queued, and true again only when the queue
 * had drained).
 */
export class SseStream {
  readonly cursor: Cursor;
  /** Topics in cursor order: `?topics=`, then those the server added. */
  readonly topics: string[];
  queued = 0;
  /** Set once the response is over (ended, closed or aborted): nothing may touch `res` then. */
  done = false;

  constructor(
    readonly res: HttpResponse,
    readonly session: Session,
    topics: readonly string[],
    resume: readonly (StreamPosition | undefined)[],
  ) {
    this.topics = [...topics];
    this.cursor = new Cursor(resume.slice(0, topics.length));
  }

  /** The cursor index of `topic`, added at the end when the stream did not have it. */
  indexOf(topic: string): number {
    const i = this.topics.indexOf(topic);
    if (i >= 0) return i;
    this.topics.push(topic);
    return this.topics.length - 1;
  }

  /** Writes `chunks` corked; returns the bytes and counts what is queued behind a slow reader. */
  write(a: string | Uint8Array, b?: string | Uint8Array): number {
    if (this.done) return 0;
    let ok = true;
    const res = this.res;
    res.cork(() => {
      ok = res.write(a);
      if (b !== undefined) ok = res.write(b) && ok;
    });
    const n = a.length + (b?.length ?? 0);
    this.queued = ok ? 0 : this.queued + n;
    return n;
  }
}
