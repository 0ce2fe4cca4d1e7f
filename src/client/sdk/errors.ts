import { ErrorCode } from '../../protocol/codes';

/**
 * The server's stable error codes (docs/protocol.md, "Errors"; HTTP-only ones included), passed through
 * unchanged in `WsgateError.code`.
 */
export type ServerCode = ErrorCode;

const serverCodes: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/** `code` (from a refusal's body) when it is one of the server's codes, else undefined. */
export const asServerCode = (code: string | undefined): ServerCode | undefined =>
  code !== undefined && serverCodes.has(code) ? (code as ServerCode) : undefined;

/** Codes the SDK itself produces, next to the server's. */
export const ClientCode = {
  /** The upgrade was refused with 401/403 or the server closed with 1008, and no new token came. */
  Unauthorized: 'unauthorized',
  /** The connection dropped before a command's reply arrived; a `pub` may or may not have happened. */
  ConnectionLost: 'connection_lost',
  /** The client was closed by `close()` (or stopped after an auth failure) while the command waited. */
  Closed: 'closed',
  /** The server closed with 1009: the frame was over its max payload. It is not resent. */
  MessageTooBig: 'message_too_big',
  /** The token provider threw or rejected. */
  TokenProvider: 'token_provider_failed',
  /** A frame from the server did not decode or had an unexpected shape. */
  BadServerFrame: 'bad_server_frame',
  /**
   * The upgrade was refused in a way retrying cannot fix (HTTP 400, 404, 426, or 403 origin_not_allowed):
   * the client stops. When the refusal carried an error code, that code is used instead.
   */
  Refused: 'refused',
  /** The transport reported an error (connection refused, reset, ...), in Node; the client reconnects. */
  Transport: 'transport_error',
  /** The server skipped messages for this slow client (`--slow-consumer drop`); a `gap` event follows. */
  Dropped: 'dropped',
  /** The server ended the subscription (an `unsubscribed` notice); a `subscribe()` still waiting for it rejects. */
  Unsubscribed: 'unsubscribed',
} as const;
export type ClientCode = (typeof ClientCode)[keyof typeof ClientCode];

/** Every code a `WsgateError` can carry. */
export type WsgateErrorCode = ServerCode | ClientCode;

/** An error with a stable `code`: the server's (`forbidden`, `invalid_topic`, ...) or a `ClientCode`. */
export class WsgateError extends Error {
  override readonly name = 'WsgateError';
  constructor(
    readonly code: WsgateErrorCode,
    readonly reason: string,
    /** HTTP status of a refused upgrade or WebSocket close code, when the error came from one. */
    readonly status?: number,
  ) {
    super(`${code}: ${reason}`);
  }
}
