/**
 * The two client dialects the generator speaks. wsgate and the raw uWS and ws baselines share the
 * wsgate wire protocol (subscribe with `?topics=`, publish `{"op":"pub",...}`, deliveries carry the
 * data). Socket.IO is spoken natively (Engine.IO v4 over the websocket transport, text packets), so
 * the same hand-written, non-allocating receive path measures all four servers.
 */
export type DialectName = 'plain' | 'socketio';

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

export function dialect(name: DialectName): Dialect {
  return name === 'plain' ? plain : socketio;
}
