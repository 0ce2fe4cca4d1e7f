import type { RetainedMessage } from '../broker/broker';
import type { HistoryBudget } from './history';

/**
 * A topic's latest message (rule `lastMessage`), as msgpack data in a buffer reused from one publish to
 * the next, so keeping it allocates only when a message outgrows it. Its bytes count against the history
 * budget: past it, the message is not kept.
 */
export class LastMessage implements RetainedMessage {
  seq = 0;
  readonly json = false;
  /** Date.now() when it was kept, for expiry with the topic's position. */
  at = 0;
  private buf: Buffer = Buffer.alloc(0);
  private len = 0;

  get data(): Buffer {
    return this.buf.subarray(0, this.len);
  }

  get bytes(): number {
    return this.buf.length;
  }

  /** Keeps `data` (copied); false when the budget cannot hold it (the previous message is dropped then). */
  keep(seq: number, data: Uint8Array, now: number, budget: HistoryBudget): boolean {
    if (data.length > this.buf.length) {
      budget.give(this.buf.length);
      const cap = Math.max(64, data.length);
      if (!budget.take(cap)) {
        this.buf = Buffer.alloc(0);
        this.len = 0;
        return false;
      }
      this.buf = Buffer.allocUnsafe(cap);
    }
    this.buf.set(data, 0);
    this.len = data.length;
    this.seq = seq;
    this.at = now;
    return true;
  }

  release(budget: HistoryBudget): void {
    budget.give(this.buf.length);
    this.buf = Buffer.alloc(0);
    this.len = 0;
  }
}
