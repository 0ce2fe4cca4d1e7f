import type { Codec } from '../protocol/codec';
import type { Grant } from '../auth/token-verifier';
import type { TaskQueue } from '../hooks/task-queue';
import type { DisconnectReason } from '../metrics/stats';
import { TopicList } from './topic-list';
import type { CommandBucket } from '../guard/command-rate';
import type { AddressKey } from '../guard/upgrade-guard';
import { newEpoch } from '../pubsub/topic-state';

// Client ids are this node's random id plus a serial: unique across the cluster, and no string is built
// per connection unless something (a proxy, a webhook) needs the id.
const NODE = newEpoch();
let serials = 0;

/** Per-connection state, stored as the uWS socket's user data. */
export interface Connection extends CommandBucket {
  readonly serial: number;
  readonly codec: Codec;
  /** Replaced by an in-band `refresh`. */
  grant: Grant;
  /** Topics this connection subscribed to (bounded by maxTopicsPerConn). */
  readonly topics: TopicList;
  /** Topics from `?topics=` to subscribe on open; emptied then, since idle connections are the bulk of memory. */
  initialTopics: readonly string[];
  /** Topics the application gave the connection (connect proxy), subscribed on open without checks; then emptied. */
  serverTopics: readonly string[];
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
  /** The client address (or IPv6 /64) this connection counts under for --max-connections-per-ip. */
  readonly addressKey: AddressKey;
  /** Publishes kept in order behind one waiting for the publish proxy (created on first use, dropped when idle). */
  pubQueue: TaskQueue | null;
}

export function newConnection(codec: Codec, grant: Grant, initialTopics: readonly string[], serverTopics: readonly string[], addressKey: AddressKey): Connection {
  return {
    serial: ++serials,
    codec,
    grant,
    topics: new TopicList(),
    initialTopics,
    serverTopics,
    dropped: 0,
    closeReason: null,
    closed: false,
    expiry: null,
    closeTimer: null,
    pendingSubs: null,
    addressKey,
    cmdMilli: -1,
    cmdAt: 0,
    cmdRefused: 0,
    cmdRefusedSince: 0,
    pubQueue: null,
  };
}

/** The client id the application sees in proxy calls and webhooks. */
export const clientId = (conn: Connection): string => `${NODE}.${conn.serial}`;

