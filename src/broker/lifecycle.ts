/** Exponential backoff with jitter for reconnect attempts. */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly baseMs: number,
    private readonly maxMs: number,
  ) {}

  next(): number {
    const ms = Math.min(this.maxMs, this.baseMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return ms / 2 + Math.random() * (ms / 2);
  }

  reset(): void {
    this.attempt = 0;
  }
}

/** Waits for `p` at most `ms`; never rejects (shutdown and startup must not hang or throw on a broker). */
export function raceTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    p.then(
      () => resolve(),
      () => resolve(),
    ).finally(() => clearTimeout(timer));
  });
}
