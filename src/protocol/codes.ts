/** Stable error codes sent in `err` replies and refused-upgrade bodies. Clients match on these. */
export const ErrorCode = {
  BadFrame: 'bad_frame',
  UnknownOp: 'unknown_op',
  BadRequest: 'bad_request',
  InvalidTopic: 'invalid_topic',
  TooManyTopics: 'too_many_topics',
  Forbidden: 'forbidden',
  BadSince: 'bad_since',
  Unavailable: 'unavailable',
  UnrecoverablePosition: 'unrecoverable_position',
  /** presence / presence_stats on a topic whose rule has no presence. */
  PresenceDisabled: 'presence_disabled',
  /** A `sub` asking for deltas on a topic whose rule has no `delta`. */
  DeltaDisabled: 'delta_disabled',
  /** Over --max-commands-per-second: the command was not executed. */
  RateLimited: 'rate_limited',
  // Upgrade / HTTP only
  Unauthorized: 'unauthorized',
  TooManyConnections: 'too_many_connections',
  Draining: 'draining',
  UnsupportedSubprotocol: 'unsupported_subprotocol',
  PayloadTooLarge: 'payload_too_large',
  UnsupportedMediaType: 'unsupported_media_type',
  NotFound: 'not_found',
  OriginNotAllowed: 'origin_not_allowed',
  TooManyConnectionsPerIp: 'too_many_connections_per_ip',
  ConnectRateLimited: 'connect_rate_limited',
  /** An unexpected exception while handling the request (a bug, contained and counted). */
  Internal: 'internal_error',
  ProxyUnavailable: 'proxy_unavailable',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** WebSocket close codes the gateway sends (docs/protocol.md, "Close codes"). */
export const CloseCode = {
  Normal: 1000,
  PolicyViolation: 1008,
  TooBig: 1009,
  InternalError: 1011,
  ServiceRestart: 1012,
  SlowConsumer: 4008,
  CommandFlood: 4029,
  /** POST /disconnect with reconnect (the default) / with "reconnect": false. */
  ServerDisconnect: 4001,
  ServerDisconnectTerminal: 4003,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** An error as a value: a stable code plus human text, optionally tied to a command id. */
export class GatewayError {
  constructor(
    readonly code: ErrorCode,
    readonly reason: string,
    readonly id?: number,
  ) {}

  withId(id: number | undefined): GatewayError {
    return id === undefined || id === this.id ? this : new GatewayError(this.code, this.reason, id);
  }
}
