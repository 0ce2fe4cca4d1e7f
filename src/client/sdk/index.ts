/** The wsgate client SDK (`wsgate/client`): browsers and Node, JSON and msgpack. See docs/client.md. */
export { type BackoffOptions, backoffDelay, defaultBackoff, promptDelay } from './backoff';
export {
  type ClientEvents,
  type ClientOptions,
  type ConnectionState,
  type GapEvent,
  type HistoryPage,
  type MemberEvent,
  type MessageEvent,
  type PresenceStats,
  type ServerSubscriptionEvent,
  type StateEvent,
  type SubscribeResult,
  type UnsubscribedEvent,
  WsgateClient,
} from './client';
export { ClientCode, type ServerCode, WsgateError, type WsgateErrorCode } from './errors';
export { type SocketEvents, type SocketFactory, type SocketHandle } from './socket';
export { type CodecName, type HistoryMessage, type PresenceMember, type StreamPosition } from './wire';
