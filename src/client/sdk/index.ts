/** The wsgate client SDK (`wsgate/client`): browsers and Node, JSON and msgpack. See docs/client.md. */
export { type BackoffOptions, backoffDelay, defaultBackoff, promptDelay } from './backoff';
export {
  type ClientEvents,
  type ClientOptions,
  type ConnectionState,
  type GapEvent,
  type MessageEvent,
  type StateEvent,
  type SubscribeResult,
  type UnsubscribedEvent,
  WsgateClient,
} from './client';
export { ClientCode, type ServerCode, WsgateError, type WsgateErrorCode } from './errors';
export { type SocketEvents, type SocketFactory, type SocketHandle } from './socket';
export { type CodecName, type StreamPosition } from './wire';
