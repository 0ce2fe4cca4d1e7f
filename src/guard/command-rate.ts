/** One connection's command budget (small integers: no heap number each). */
export interface CommandBucket {
  /** Thousandths of a command that may still be sent. */
  milli: number;
  /** Tick (ms since the limiter's epoch) of the last refill. */
  at: number;
  /** Commands refused in the current flood window, and the tick that window started. */
  refused: number;
  refusedSince: number;
}

/**
 * A connection's slot for its bucket, made on its first command: a connection that never sends one
 * (most idle subscribers) holds none, and the connection object keeps one field instead of four (uWS
 * copies user data onto its socket object, which V8 makes a dictionary past ~15 fields; connection.ts).
 */
export interface CommandBucketSlot {
  cmd: CommandBucket | null;
}

export type CommandVerdict = 'run' | 'refuse' | 'flood';

/** A client is closed with 4029 when more than a burst of its commands are refused within this window. */
export const FLOOD_WINDOW_MS = 10_000;
// Ticks stay below 2^30 (V8's small-integer range); past that the epoch moves and every bucket reads
// as refilled once (every ~12 days).
const MAX_TICK = 2 ** 30 - 1;

/**
 * `--max-commands-per-second` with `--command-burst`: a token bucket per connection, refilled lazily
 * when a command arrives, so an idle connection costs nothing and no timer runs. Integer arithmetic in
 * thousandths of a command per millisecond.
 */
export class CommandRate {
  private epoch = Date.now();
  private readonly burstMilli: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
  ) {
    this.burstMilli = burst * 1000;
  }

  get enabled(): boolean {
    return this.perSecond > 0;
  }

  take(slot: CommandBucketSlot, nowMs: number): CommandVerdict {
    let now = nowMs - this.epoch;
    if (now > MAX_TICK) {
      this.epoch = nowMs;
      now = 0;
    }
    // First command: a full bucket.
    const b = (slot.cmd ??= { milli: this.burstMilli, at: now, refused: 0, refusedSince: now });
    const elapsed = now - b.at;
    // A bucket from before the epoch moved: full.
    b.milli = elapsed < 0 ? this.burstMilli : Math.min(this.burstMilli, b.milli + elapsed * this.perSecond);
    b.at = now;
    if (b.milli >= 1000) {
      b.milli -= 1000;
      return 'run';
    }
    if (now - b.refusedSince > FLOOD_WINDOW_MS || now < b.refusedSince) {
      b.refusedSince = now;
      b.refused = 0;
    }
    return ++b.refused > this.burst ? 'flood' : 'refuse';
  }
}
