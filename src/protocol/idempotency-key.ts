import { ErrorCode, GatewayError } from './codes';

// Keys are the client's: bounded like topics, so a key costs a known amount of memory.
export const MAX_IDEMPOTENCY_KEY = 128;

/** The key of a `pub` or `POST /publish` item: undefined when absent, or the error to reply. */
export function checkIdempotencyKey(v: unknown): string | undefined | GatewayError {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_IDEMPOTENCY_KEY) {
    return new GatewayError(ErrorCode.BadRequest, `idempotencyKey must be a string of 1..${MAX_IDEMPOTENCY_KEY} characters`);
  }
  return v;
}
