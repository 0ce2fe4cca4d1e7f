/**
 * The client dialects the generator speaks. wsgate and the raw uWS and ws baselines share the
 * wsgate wire protocol (subscribe with `?topics=`, publish `{"op":"pub",...}`, deliveries carry the
 * data). Socket.IO is spoken natively (Engine.IO v4 over the websocket transport, text packets), and
 * so is Pusher (protocol 7: subscribe to `private-<topic>` with a signed auth after
 * connection_established, publish as client events), so the same hand-written, non-allocating receive
 * path measures every server.
 */
export type DialectName = 'plain' | 'socketio' | 'pusher';

export interface Dialect {
  readonly name: DialectName;
  path(topics: readonly string[]): string;
  /** Bytes of a publish frame before the data string's contents. */
  pubPrefix(topic: string): Buffer;
  /** Bytes after the data string's contents. */
  readonly pubSuffix: Buffer;
}

const plain: Dialect = {
  name: 'plain',
  path: (topics) => (topics.length > 0 ? `/ws?topics=${topics.join(',')}` : '/ws'),
  pubPrefix: (topic) => Buffer.from(`{"op":"pub","topic":"${topic}","data":"`),
  pubSuffix: Buffer.from('"}'),
};

const socketio: Dialect = {
  name: 'socketio',
  path: (topics) =>
    `/socket.io/?EIO=4&transport=websocket${topics.length > 0 ? `&topics=${topics.join(',')}` : ''}`,
  pubPrefix: (topic) => Buffer.from(`42["pub",{"topic":"${topic}","data":"`),
  pubSuffix: Buffer.from('"}]'),
};

/** The one app the Pusher bench server is started with (bench/lib/servers.ts). */
export const PUSHER_BENCH_APP = { id: '1', key: 'bench-key', secret: 'bench-secret' } as const;

/** Client events need a private channel the sender is subscribed to (never echoed to it). */
export const pusherChannel = (topic: string): string => `private-${topic}`;

const pusher: Dialect = {
  name: 'pusher',
  path: () => `/app/${PUSHER_BENCH_APP.key}?protocol=7&client=js&version=8.4.0`,
  pubPrefix: (topic) => Buffer.from(`{"event":"client-b","channel":"${pusherChannel(topic)}","data":"`),
  pubSuffix: Buffer.from('"}'),
};

export function dialect(name: DialectName): Dialect {
  return name === 'plain' ? plain : name === 'socketio' ? socketio : pusher;
}
