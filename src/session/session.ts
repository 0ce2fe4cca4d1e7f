import type { Codec } from '../protocol/codec';
import type { Grant } from '../auth/token-verifier';
import type { TaskQueue } from '../hooks/task-queue';
import type { DisconnectReason } from '../metrics/stats';
import { TopicList } from './topic-list';
import type { CommandBucketSlot } from '../guard/command-rate';
import type { AddressKey } from '../guard/upgrade-guard';
import { newEpoch } from '../pubsub/topic-state';

// Client ids are this node's random id plus a serial: unique across the cluster, and no string is built
// per connection unless something (a proxy, a webhook) needs the id.
const NODE = newEpoch();
let serials = 0;

/** Topics to subscribe on open: from `?topics=` (the grant was checked; the subscribe proxy may still be asked) and from the connect proxy (trusted). */
export interface OpenTopics {
  readonly query: readonly string[];
  readonly server: readonly string[];
}

/**
 * Per-connection state, stored as the uWS socket's user data. uWS.js copies these fields onto its
 * WebSocket object one by one; V8 (Node 20) turns an object given more than 15 fields that way into a
 * dictionary, ~830 B instead of ~130 B per idle connection (test/connection-shape.test.ts checks). So
 * at most 15 fields: what only some connections need lives in an object made on first use.
 */
export interface Session extends CommandBucketSlot {
  readonly serial: number;
  readonly codec: Codec;
  /** Replaced by an in-band `refresh`. */
  grant: Grant;
  /** Topics this connection subscribed to (bounded by maxTopicsPerConn). */
  readonly topics: TopicList;
  /** Topics to subscribe on open (null when none); dropped then, since idle connections are the bulk of memory. */
  opening: OpenTopics | null;
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

export function newSession(codec: Codec, grant: Grant, opening: OpenTopics | null, addressKey: AddressKey): Session {
  return {
    serial: ++serials,
    codec,
    grant,
    topics: new TopicList(),
    opening,
    dropped: 0,
    closeReason: null,
    closed: false,
    expiry: null,
    closeTimer: null,
    pendingSubs: null,
    addressKey,
    cmd: null,
    pubQueue: null,
  };
}

/** The client id the application sees in proxy calls and webhooks. */
export const clientId = (conn: Session): string => `${NODE}.${conn.serial}`;

