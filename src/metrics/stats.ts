import type { Op } from '../protocol/commands';

/** Label values are closed sets, so no metric can grow unbounded label cardinality. */
export type UpgradeResult = 'accepted' | 'unauthorized' | 'unavailable' | 'forbidden' | 'bad_request' | 'limit' | 'draining' | 'origin_not_allowed' | 'ip_limit' | 'ip_rate' | 'proxy_unavailable';
export type DisconnectReason = 'client' | 'slow_consumer' | 'drain' | 'too_big' | 'token_expired' | 'error' | 'command_flood' | 'internal_error' | 'server' | 'terminated' | 'pong_timeout';
/** Where an unexpected exception was contained (server/contain.ts). */
export type HandlerName = 'upgrade' | 'open' | 'message' | 'drain' | 'dropped' | 'close' | 'http';
export type PublishSource = 'socket' | 'http' | 'broker' | 'demo';
export type HttpPublishResult = 'ok' | 'bad_request' | 'unauthorized' | 'too_large' | 'unsupported_media_type' | 'unavailable';
export type RecoveryOutcome = 'recovered' | 'gap';
/** Where data nesting deeper than --max-depth was refused. */
export type DepthSource = 'socket' | 'http' | 'broker';
export type ProxyKind = 'connect' | 'subscribe' | 'publish';
export const PROXY_KINDS: readonly ProxyKind[] = ['connect', 'subscribe', 'publish'];
/** allowed/denied: the application answered; the rest: no usable answer (timeout, failure/5xx/unreadable, too many in flight). */
export type ProxyResult = 'allowed' | 'denied' | 'timeout' | 'error' | 'overloaded';
const PROXY_RESULTS: readonly ProxyResult[] = ['allowed', 'denied', 'timeout', 'error', 'overloaded'];

const zeros = <K extends string>(keys: readonly K[]): Record<K, number> =>
  Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;

/**
 * Hot-path counters as plain numbers. Code on the message path increments fields here; prom-client
 * reads them only at scrape time (see registry.ts), so counting costs an add, never a label lookup.
 */
/** The counters delta delivery (src/pubsub/delta.ts) keeps. */
export type DeltaStats = Pick<Stats, 'deltaDeliveries' | 'deltaSentBytes' | 'deltaSavedBytes' | 'deltaComputed' | 'deltaSeconds'>;

export class Stats {
  connections = 0;
  /** Upgrades waiting for a token check or the connect proxy. */
  pendingUpgrades = 0;
  /** Connections through the Pusher front door (also counted in `connections`). */
  pusherConnections = 0;
  /** Subscriptions held by Pusher connections (also counted in `subscriptions`). */
  pusherSubscriptions = 0;
  /** Server-Sent Events streams (also counted in `connections`). */
  sseConnections = 0;
  /** Subscriptions held by SSE streams (also counted in `subscriptions`). */
  sseSubscriptions = 0;
  /** Frames received from Pusher clients. */
  pusherEvents = 0;
  /** Pusher REST calls refused for their signature (401). */
  pusherRestRefused = 0;
  subscriptions = 0;
  topics = 0;
  readonly upgrades = zeros<UpgradeResult>(['accepted', 'unauthorized', 'unavailable', 'forbidden', 'bad_request', 'limit', 'draining', 'origin_not_allowed', 'ip_limit', 'ip_rate', 'proxy_unavailable']);
  readonly disconnects = zeros<DisconnectReason>(['client', 'slow_consumer', 'drain', 'too_big', 'token_expired', 'error', 'command_flood', 'internal_error', 'server', 'terminated', 'pong_timeout']);
  readonly handlerErrors = zeros<HandlerName>(['upgrade', 'open', 'message', 'drain', 'dropped', 'close', 'http']);
  /** Commands refused by --max-commands-per-second (also in errors as rate_limited). */
  commandsRateLimited = 0;
  readonly received = zeros<Op | 'invalid'>(['sub', 'unsub', 'pub', 'ping', 'refresh', 'history', 'presence', 'presence_stats', 'invalid']);
  readonly publishes = zeros<PublishSource>(['socket', 'http', 'broker', 'demo']);
  deliveries = 0;
  receivedBytes = 0;
  sentBytes = 0;
  readonly errors = new Map<string, number>();
  readonly tooDeep = zeros<DepthSource>(['socket', 'http', 'broker']);
  slowConsumerDrops = 0;
  slowConsumerDisconnects = 0;
  readonly httpPublish = zeros<HttpPublishResult>(['ok', 'bad_request', 'unauthorized', 'too_large', 'unsupported_media_type', 'unavailable']);
  draining = false;
  historyEntries = 0;
  historyBytes = 0;
  /** Positions of topics without state, kept so their numbering continues (see PositionMemory). */
  rememberedPositions = 0;
  readonly recoveries = zeros<RecoveryOutcome>(['recovered', 'gap']);
  replayed = 0;
  /** Server API calls (POST /disconnect, /subscribe, /unsubscribe) run, and refused (bad request, key). */
  readonly serverApi = zeros<'disconnect' | 'subscribe' | 'unsubscribe'>(['disconnect', 'subscribe', 'unsubscribe']);
  readonly serverApiRefused = zeros<'disconnect' | 'subscribe' | 'unsubscribe'>(['disconnect', 'subscribe', 'unsubscribe']);
  /** Join/leave notices fanned out by this node (each once, however many subscribers it reached). */
  readonly joinLeave = zeros<'join' | 'leave'>(['join', 'leave']);
  /** Epoch changes under live subscribers, each announced to them with a `reset` notice. */
  epochResets = 0;
  /** Subscribers sent the topic's latest message on subscribe (rule lastMessage). */
  lastMessageHits = 0;
  /** Deliveries to delta subscriptions (rule delta), as a delta or in full. */
  readonly deltaDeliveries = zeros<'delta' | 'full'>(['delta', 'full']);
  /** Bytes sent to delta subscriptions, and what their full frames would have cost more. */
  deltaSentBytes = 0;
  deltaSavedBytes = 0;
  /** Deltas computed (once per publish and codec) and the time spent computing and framing them. */
  deltaComputed = 0;
  deltaSeconds = 0;
  brokerUp = false;
  brokerPublished = 0;
  brokerReceived = 0;
  brokerBytesOut = 0;
  brokerBytesIn = 0;
  brokerFailures = 0;
  /** Broker messages ignored: not a wsgate envelope, or data that is malformed or nests too deep. */
  brokerRejected = 0;
  /** Messages fanned out from the broker's history after a subscriber-connection outage (Redis). */
  brokerRefilled = 0;
  brokerSubscriptions = 0;
  /** Webhook events delivered, given up after retries, dropped because the queue was full. */
  readonly webhookEvents = zeros<'sent' | 'failed' | 'dropped'>(['sent', 'failed', 'dropped']);
  webhookRetries = 0;
  webhookQueued = 0;
  /** Occupancy events decided while this node's outbox in the ledger was full (sent from memory only). */
  webhookOutboxFull = 0;
  /** Occupancy events of gone nodes taken over from their outbox and sent by this node. */
  webhookTakenOver = 0;
  /** Occupancy events of this node's own outbox sent again (decided by a call whose reply was lost, or left unsent). */
  webhookResent = 0;
  /** Publishes not made because their idempotencyKey was seen within the window. */
  idempotentRepeats = 0;
  /** Node-local idempotency keys held, and those forgotten before their window ended (key cap). */
  idempotencyKeys = 0;
  idempotencyEvicted = 0;
  /** Application proxy calls by kind and result. */
  readonly proxy: Readonly<Record<ProxyKind, Record<ProxyResult, number>>> = {
    connect: zeros(PROXY_RESULTS),
    subscribe: zeros(PROXY_RESULTS),
    publish: zeros(PROXY_RESULTS),
  };

  /** Error codes are a closed set (protocol/codes.ts), so the map stays small. */
  countError(code: string): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }
}
