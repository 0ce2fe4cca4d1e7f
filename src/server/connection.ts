import type { Codec } from '../protocol/codec';
import type { Grant } from '../auth/token-verifier';
import type { DisconnectReason } from '../metrics/stats';
import { TopicList } from './topic-list';

/** Per-connection state, stored as the uWS socket's user data. */
export interface Connection {
  readonly codec: Codec;
  readonly grant: Grant;
  /** Topics this connection subscribed to (bounded by maxTopicsPerConn). */
  readonly topics: TopicList;
  /** Topics from `?topics=` to subscribe on open; emptied then, since idle connections are the bulk of memory. */
  initialTopics: readonly string[];
  /** Messages dropped since the last `dropped` notice (policy drop). */
  dropped: number;
  /** Set when the gateway itself closes the connection, so close() counts the right reason. */
  closeReason: DisconnectReason | null;
  closed: boolean;
  expiry: NodeJS.Timeout | null;
  /** Deadline for a slow consumer's 4008 close. */
  closeTimer: NodeJS.Timeout | null;
  /** Subscriptions waiting for a cluster broker's snapshot, by topic → request token (created on first use). */
  pendingSubs: Map<string, number> | null;
}

export function newConnection(codec: Codec, grant: Grant, initialTopics: readonly string[]): Connection {
  return { codec, grant, topics: new TopicList(), initialTopics, dropped: 0, closeReason: null, closed: false, expiry: null, closeTimer: null, pendingSubs: null };
}
