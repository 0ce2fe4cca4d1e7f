import type { Grant, TokenVerifier } from '../auth/token-verifier';
import { ErrorCode, GatewayError } from '../protocol/codes';
import type { Session } from '../session/session';

// Node timers cannot wait longer than 2^31-1 ms; tokens valid longer than ~24 days get no timer.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** (Re)arms the close at the connection's token expiry; a grant without expiry clears it. */
export function armExpiry(conn: Session, onExpired: () => void): void {
  if (conn.expiry !== null) clearTimeout(conn.expiry);
  conn.expiry = null;
  const exp = conn.grant.expiresAt;
  if (exp === undefined) return;
  const ms = exp * 1000 - Date.now();
  if (ms < MAX_TIMER_MS) conn.expiry = setTimeout(onExpired, Math.max(ms, 0));
}

/** A refresh that verified: the grant to hold from now on and the held topics it no longer allows. */
export interface Refreshed {
  readonly grant: Grant;
  readonly revoked: readonly string[];
}

/**
 * Checks an in-band `refresh`: the new token must verify and name the same subject as the one the
 * connection was opened with. On any error the caller keeps the old grant.
 */
export function refreshGrant(verifier: TokenVerifier | null, conn: Session, token: string, id: number | undefined): Refreshed | GatewayError {
  if (verifier === null) return new GatewayError(ErrorCode.BadRequest, 'this gateway does not use tokens: nothing to refresh', id);
  const grant = verifier.verify(token);
  if (grant instanceof GatewayError) return grant.withId(id);
  if (grant.subject !== conn.grant.subject) return new GatewayError(ErrorCode.Forbidden, 'the new token is for another subject', id);
  const revoked = [...conn.topics].filter((t) => !grant.subscribe.allows(t));
  return { grant, revoked };
}
