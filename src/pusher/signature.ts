import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** Hex HMAC-SHA256 of `data` with `secret`: every Pusher signature (channel auth, REST, webhooks). */
export const sign = (secret: string, data: string): string => createHmac('sha256', secret).update(data).digest('hex');

/** Constant-time comparison of two signatures (strings of any length). */
export function sameSignature(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Checks a channel subscription's `auth` (`<key>:<hex signature>`). The signed string is
 * `socket_id:channel` for private channels and `socket_id:channel:channel_data` for presence ones.
 */
export function channelAuthValid(key: string, secret: string, auth: string, socketId: string, channel: string, channelData?: string): boolean {
  const colon = auth.indexOf(':');
  if (colon < 0 || auth.slice(0, colon) !== key) return false;
  const data = channelData === undefined ? `${socketId}:${channel}` : `${socketId}:${channel}:${channelData}`;
  return sameSignature(auth.slice(colon + 1), sign(secret, data));
}

/** Checks a `pusher:signin` (user authentication): signed string `socket_id::user::user_data`. */
export function userAuthValid(key: string, secret: string, auth: string, socketId: string, userData: string): boolean {
  const colon = auth.indexOf(':');
  if (colon < 0 || auth.slice(0, colon) !== key) return false;
  return sameSignature(auth.slice(colon + 1), sign(secret, `${socketId}::user::${userData}`));
}

/** Why a REST request's signature was refused; Pusher answers each with 401. */
export type RestAuthFailure = 'missing_params' | 'unknown_key' | 'stale_timestamp' | 'bad_body_md5' | 'bad_signature';

export interface RestRequest {
  readonly method: string;
  readonly path: string;
  /** Query parameters, decoded. */
  readonly params: ReadonlyMap<string, string>;
  readonly body: Buffer;
}

/** How far `auth_timestamp` may be from the server's clock (Pusher's documented window). */
export const REST_TIMESTAMP_WINDOW_S = 600;

/**
 * Verifies Pusher's REST request signature: `auth_signature` = HMAC-SHA256(secret,
 * "METHOD\nPATH\n" + every other query parameter sorted by key as `k=v` joined with `&`), with
 * `auth_key`, `auth_timestamp` (within 600 s), `auth_version` and, for a body, `body_md5`.
 */
export function verifyRestRequest(req: RestRequest, key: string, secret: string, nowS: number): RestAuthFailure | null {
  const p = req.params;
  const signature = p.get('auth_signature');
  const authKey = p.get('auth_key');
  const timestamp = p.get('auth_timestamp');
  if (signature === undefined || authKey === undefined || timestamp === undefined || p.get('auth_version') === undefined) return 'missing_params';
  if (authKey !== key) return 'unknown_key';
  const ts = Number(timestamp);
  if (!Number.isFinite(ts) || Math.abs(nowS - ts) > REST_TIMESTAMP_WINDOW_S) return 'stale_timestamp';
  if (req.body.length > 0) {
    const md5 = p.get('body_md5');
    if (md5 === undefined || !sameSignature(md5, createHash('md5').update(req.body).digest('hex'))) return 'bad_body_md5';
  }
  const signed = [...p.entries()]
    .filter(([k]) => k !== 'auth_signature')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  return sameSignature(signature, sign(secret, `${req.method.toUpperCase()}\n${req.path}\n${signed}`)) ? null : 'bad_signature';
}
