// setTimeout cannot wait longer (it would fire at once); tokens living longer get no refresh timer.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A JWT's `exp` in ms since the epoch, read without verifying (the server verifies); undefined when absent or unreadable. */
export function tokenExpiryMs(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (payload === undefined) return undefined;
  try {
    const bytes = Uint8Array.from(atob(payload.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
    const claims: unknown = JSON.parse(new TextDecoder().decode(bytes));
    const exp = typeof claims === 'object' && claims !== null ? (claims as { exp?: unknown }).exp : undefined;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * How long to wait before refreshing a token that expires at `expMs`: 80–90 % of the time it has left,
 * at random, so clients that got their tokens together do not refresh together. Undefined when it has
 * already expired or lives too long for a timer.
 */
export function refreshDelayMs(expMs: number, now = Date.now(), random = Math.random()): number | undefined {
  const left = expMs - now;
  if (left <= 0) return undefined;
  const delay = Math.floor(left * (0.8 + 0.1 * random));
  return delay <= MAX_TIMER_MS ? delay : undefined;
}
