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
  /** Bytes written since a write last went out whole (see the class comment). */
  queued = 0;
  private readonly pending: (string | Uint8Array)[] = [];
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

  /**
   * Queues chunks for the next flush; whether the stream had none queued (then it needs a flush
   * scheduled). Deliveries within one event-loop turn leave together: one cork, one syscall per stream,
   * as uWS batches a WebSocket's frames.
   */
  enqueue(a: string | Uint8Array, b?: string | Uint8Array): boolean {
    const first = this.pending.length === 0;
    this.pending.push(a);
    if (b !== undefined) this.pending.push(b);
    return first;
  }

  /** Writes what is queued, corked, and counts what is left waiting behind a slow reader. */
  flush(): void {
    if (this.done || this.pending.length === 0) {
      this.pending.length = 0;
      return;
    }
    this.res.cork(this.writeAll);
  }

  private readonly writeAll = (): void => {
    let ok = true;
    let n = 0;
    for (const chunk of this.pending) {
      ok = this.res.write(chunk) && ok;
      n += chunk.length;
    }
    this.pending.length = 0;
    this.queued = ok ? 0 : this.queued + n;
  };
}
