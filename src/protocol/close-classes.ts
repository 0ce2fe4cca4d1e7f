/**
 * What a client should do after each close code and each refused upgrade: the one table behind
 * docs/protocol.md ("Close codes and refusals") and the SDK's reconnect loop. No imports: the browser
 * bundle of the SDK includes this file.
 *
 * - `reconnect`: transient; reconnect with exponential backoff and resume with `since`.
 * - `reconnect_now`: the server asked the client to go (drain, slow consumer); reconnect promptly with a
 *   short jitter and resume.
 * - `new_token`: the credentials no longer do; get a new token, then reconnect. Without a different token
 *   it is terminal.
 * - `terminal`: retrying the same request gets the same answer; stop and surface the error.
 */
export type CloseClass = 'reconnect' | 'reconnect_now' | 'new_token' | 'terminal';

export interface CloseRule {
  readonly class: CloseClass;
  readonly meaning: string;
}

/** WebSocket close codes as the client sees them. */
export const CLOSE_RULES: Readonly<Record<number, CloseRule>> = {
  1000: { class: 'reconnect', meaning: 'normal closure' },
  1001: { class: 'reconnect', meaning: 'going away' },
  1006: { class: 'reconnect', meaning: 'no close frame: network cut, a frame over 4 × --max-payload, invalid UTF-8, or (browsers) any refused upgrade' },
  1008: { class: 'new_token', meaning: 'the token expired while connected' },
  1009: { class: 'reconnect', meaning: 'a message over --max-payload; it must not be resent' },
  1011: { class: 'reconnect', meaning: 'internal error (an unexpected exception, contained to this connection)' },
  1012: { class: 'reconnect_now', meaning: 'the node is draining (deploy, shutdown)' },
  4001: { class: 'reconnect', meaning: 'disconnected by the application (POST /disconnect); reconnecting is allowed' },
  4003: { class: 'terminal', meaning: 'disconnected by the application (POST /disconnect with "reconnect": false); do not reconnect' },
  4008: { class: 'reconnect_now', meaning: 'slow consumer: the send buffer exceeded --max-backpressure' },
  4029: { class: 'reconnect', meaning: 'command flood: more than --command-burst commands refused with rate_limited within 10 s' },
};

/** HTTP statuses of refused upgrades, optionally refined by the body's error code. */
export const REFUSAL_RULES: Readonly<Record<number, CloseRule>> = {
  400: { class: 'terminal', meaning: 'bad request: missing upgrade headers, bad topic, too many topics, unsupported subprotocol' },
  401: { class: 'new_token', meaning: 'missing, invalid or expired token' },
  403: { class: 'new_token', meaning: 'the token does not allow a topic in topics= (origin_not_allowed: terminal)' },
  404: { class: 'terminal', meaning: 'no such path' },
  426: { class: 'terminal', meaning: 'not a WebSocket upgrade' },
  429: { class: 'reconnect', meaning: 'too_many_connections_per_ip or connect_rate_limited' },
  500: { class: 'reconnect', meaning: 'internal error' },
  503: { class: 'reconnect', meaning: 'too_many_connections or draining' },
};

/** Refusals whose body code overrides the status's class. */
const REFUSAL_CODE_CLASSES: Readonly<Record<string, CloseClass>> = {
  origin_not_allowed: 'terminal',
};

/** Unknown close codes are treated as transient. */
export function closeClass(code: number): CloseClass {
  return CLOSE_RULES[code]?.class ?? 'reconnect';
}

/** Unknown statuses: 4xx terminal (the request is wrong), anything else transient. */
export function refusalClass(status: number, errorCode?: string): CloseClass {
  const byCode = errorCode === undefined ? undefined : REFUSAL_CODE_CLASSES[errorCode];
  return byCode ?? REFUSAL_RULES[status]?.class ?? (status >= 400 && status < 500 ? 'terminal' : 'reconnect');
}
