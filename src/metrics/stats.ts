import type { Op } from '../protocol/commands';

/** Label values are closed sets, so no metric can grow unbounded label cardinality. */
export type UpgradeResult = 'accepted' | 'unauthorized' | 'forbidden' | 'bad_request' | 'limit' | 'draining';
export type DisconnectReason = 'client' | 'slow_consumer' | 'drain' | 'too_big' | 'token_expired' | 'error';
export type PublishSource = 'socket' | 'http' | 'broker' | 'demo';
export type HttpPublishResult = 'ok' | 'bad_request' | 'unauthorized' | 'too_large' | 'unsupported_media_type' | 'unavailable';
export type RecoveryOutcome = 'recovered' | 'gap';

const zeros = <K extends string>(keys: readonly K[]): Record<K, number> =>
  Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;

/**
 * Hot-path counters as plain numbers. Code on the message path increments fields here; prom-client
 * reads them only at scrape time (see registry.ts), so counting costs an add, never a label lookup.
 */
export class Stats {
  connections = 0;
  subscriptions = 0;
  topics = 0;
  readonly upgrades = zeros<UpgradeResult>(['accepted', 'unauthorized', 'forbidden', 'bad_request', 'limit', 'draining']);
  readonly disconnects = zeros<DisconnectReason>(['client', 'slow_consumer', 'drain', 'too_big', 'token_expired', 'error']);
  readonly received = zeros<Op | 'invalid'>(['sub', 'unsub', 'pub', 'ping', 'history', 'invalid']);
  readonly publishes = zeros<PublishSource>(['socket', 'http', 'broker', 'demo']);
  deliveries = 0;
  receivedBytes = 0;
  sentBytes = 0;
  readonly errors = new Map<string, number>();
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
  /** Subscribers sent the topic's latest message on subscribe (rule lastMessage). */
  lastMessageHits = 0;
  brokerUp = false;
  brokerPublished = 0;
  brokerReceived = 0;
  brokerBytesOut = 0;
  brokerBytesIn = 0;
  brokerFailures = 0;
  /** Messages fanned out from the broker's history after a subscriber-connection outage (Redis). */
  brokerRefilled = 0;
  brokerSubscriptions = 0;

  /** Error codes are a closed set (protocol/codes.ts), so the map stays small. */
  countError(code: string): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }
}
