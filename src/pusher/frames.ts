/**
 * Frames of the Pusher Channels protocol (version 7). Events carry `data` as a JSON *string*;
 * `pusher:error` and `pusher:subscription_error` carry an object, as Pusher's own servers send them.
 */

/** Pusher's close and error codes (4000–4099: do not reconnect; 4100–4199: reconnect after a pause; 4200–4299: reconnect now). */
export const PusherCode = {
  /** Over the connection quota: reconnect after a pause. */
  OverQuota: 4100,
  /** Unknown app key: do not reconnect. */
  AppNotFound: 4001,
  /** A protocol version pusher-js does not speak. */
  UnsupportedProtocol: 4007,
  /** The server is going away (drain): reconnect at once. */
  Reconnect: 4200,
  /** No pong in time. */
  PongTimeout: 4201,
  /** Client events over the rate limit (an error event; the connection stays). */
  ClientEventRateLimit: 4301,
  /** terminate_connections: the application cut the user off. */
  Terminated: 4009,
  /** Generic refusals answered as pusher:error on a live connection. */
  Generic: 4009,
} as const;

export const connectionEstablished = (socketId: string, activityTimeoutS: number): string =>
  JSON.stringify({ event: 'pusher:connection_established', data: JSON.stringify({ socket_id: socketId, activity_timeout: activityTimeoutS }) });

export const pusherError = (code: number | null, message: string): string => JSON.stringify({ event: 'pusher:error', data: { code, message } });

export const pong = '{"event":"pusher:pong","data":{}}';
export const ping = '{"event":"pusher:ping","data":{}}';

export const subscriptionSucceeded = (channel: string, data: unknown = {}): string =>
  JSON.stringify({ event: 'pusher_internal:subscription_succeeded', channel, data: JSON.stringify(data) });

export const subscriptionError = (channel: string, type: string, error: string, status: number): string =>
  JSON.stringify({ event: 'pusher:subscription_error', channel, data: { type, error, status } });

export const cacheMiss = (channel: string): string => JSON.stringify({ event: 'pusher:cache_miss', channel, data: '{}' });

export const signinSuccess = (userData: string): string => JSON.stringify({ event: 'pusher:signin_success', data: JSON.stringify({ user_data: userData }) });

/** A `pusher_internal:` event of a channel (member_added, member_removed). */
export const internal = (name: string, channel: string, data: unknown): string => JSON.stringify({ event: `pusher_internal:${name}`, channel, data: JSON.stringify(data) });

/** An event as subscribers receive it; `userId` on client events of presence channels. */
export const event = (name: string, channel: string, data: string, userId?: string): string =>
  JSON.stringify(userId === undefined ? { event: name, channel, data } : { event: name, channel, data, user_id: userId });

/** A client frame: `event`, `data` (string or object) and `channel` where the event has one. */
export interface ClientFrame {
  readonly event: string;
  readonly data: unknown;
  readonly channel: string | undefined;
}

/** Parses a client frame's outer shape; null when it is not a Pusher frame. */
export function parseClientFrame(value: unknown): ClientFrame | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const { event: name, data, channel } = value as Record<string, unknown>;
  if (typeof name !== 'string' || name.length === 0 || name.length > 200) return null;
  if (channel !== undefined && typeof channel !== 'string') return null;
  // Some clients send data as a JSON string even for pusher:* events.
  let d = data;
  if (typeof data === 'string' && name.startsWith('pusher:')) {
    try {
      d = JSON.parse(data);
    } catch {
      d = data;
    }
  }
  return { event: name, data: d, channel };
}

let socketSerial = 0;
const NODE_PART = Math.floor(Math.random() * 1e9);

/** A socket id in Pusher's `<digits>.<digits>` form: this node's random part and a serial, unique per node. */
export function newSocketId(): string {
  socketSerial = (socketSerial + 1) % 1e15;
  return `${NODE_PART}.${socketSerial}`;
}
