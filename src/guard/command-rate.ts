/**
 * The per-connection numbers the command limit keeps: four small integers on the Connection object
 * (V8 keeps them as tagged small integers, so an idle connection holds no extra heap object).
 */
export interface CommandBucket {
  /** Thousandths of a command that may still be sent; -1 until the first command. */
  cmdMilli: number;
  /** Tick (ms since the limiter's epoch) of the last refill. */
  cmdAt: number;
  /** Commands refused in the current flood window, and the tick that window started. */
  cmdRefused: number;
  cmdRefusedSince: number;
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

  take(b: CommandBucket, nowMs: number): CommandVerdict {
    let now = nowMs - this.epoch;
    if (now > MAX_TICK) {
      this.epoch = nowMs;
      now = 0;
    }
    const elapsed = now - b.cmdAt;
    // First command, or a bucket from before the epoch moved: full.
    b.cmdMilli = b.cmdMilli < 0 || elapsed < 0 ? this.burstMilli : Math.min(this.burstMilli, b.cmdMilli + elapsed * this.perSecond);
    b.cmdAt = now;
    if (b.cmdMilli >= 1000) {
      b.cmdMilli -= 1000;
      return 'run';
    }
    if (now - b.cmdRefusedSince > FLOOD_WINDOW_MS || now < b.cmdRefusedSince) {
      b.cmdRefusedSince = now;
      b.cmdRefused = 0;
    }
    return ++b.cmdRefused > this.burst ? 'flood' : 'refuse';
  }
}
