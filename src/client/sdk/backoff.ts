/** Reconnect delays. All in milliseconds. */
export interface BackoffOptions {
  /** Floor of every backoff delay, so a flapping server is never retried in a tight loop. */
  readonly minDelayMs: number;
  /** Ceiling of every delay, however many attempts have failed. */
  readonly maxDelayMs: number;
  /** The jitter window of the first retry; it doubles with each failed attempt up to maxDelayMs. */
  readonly baseDelayMs: number;
  /** Jitter window after a close that asks for a prompt reconnect (1012 drain, 4008 slow consumer). */
  readonly promptDelayMs: number;
}

export const defaultBackoff: BackoffOptions = { minDelayMs: 100, maxDelayMs: 30_000, baseDelayMs: 1000, promptDelayMs: 250 };

/**
 * Exponential backoff with full jitter: uniform in [0, base * 2^attempt], clamped to [min, max].
 * Full jitter spreads a crowd of clients that lost the same node across the whole window instead of
 * having them retry in lockstep. `attempt` counts failures since the last good connection, from 0.
 */
export function backoffDelay(attempt: number, o: BackoffOptions, random: () => number = Math.random): number {
  // 2^attempt overflows to Infinity long after the window passed maxDelayMs; Math.min handles it.
  const window = Math.min(o.maxDelayMs, o.baseDelayMs * 2 ** attempt);
  return Math.round(Math.min(o.maxDelayMs, Math.max(o.minDelayMs, random() * window)));
}

/** A short jittered delay for closes that mean "come back now": spreads a drained node's clients. */
export function promptDelay(o: BackoffOptions, random: () => number = Math.random): number {
  return Math.round(random() * o.promptDelayMs);
}
