import type { Redis } from 'ioredis';
import { brokerTls } from '../broker/broker-tls';
import { natsOptions } from '../broker/nats-link';
import type { Config } from '../config/schema';
import type { Logger } from '../log';
import type { GatewayMetrics } from '../metrics/gateway-metrics';
import type { Stats } from '../metrics/stats';
import type { Hub } from '../pubsub/hub';
import type { ControlBus } from '../cluster/control-bus';
import { ConnectProxy } from './connect-proxy';
import { connectOnce } from './lazy-redis';
import { type Idempotency, LocalIdempotency } from '../idempotency/idempotency';
import { RedisIdempotency } from '../idempotency/redis-idempotency';
import { SharedIdempotency } from '../idempotency/shared-idempotency';
import { SharedMembership } from '../shared/membership-table';
import type { ProcessTables } from '../shared/process-tables';
import { SharedLedger } from './shared-ledger';
import { JetStreamIdempotency, type KeyedPublisher } from '../idempotency/jetstream-idempotency';
import { NatsLedger } from './nats-ledger';
import { LocalLedger, Occupancy, type OccupancyLedger, type OccupancySink, type Outboxed } from './occupancy';
import { ProxyClient } from './proxy-client';
import { RedisLedger } from './redis-ledger';
import { type SessionEvents, WebhookSessionEvents } from './session-events';
import { PublishProxy, SubscribeProxy } from './topic-proxies';
import { WebhookSender } from './webhook-sender';
import { ioredis, nats } from '../optional-deps';

/** The proxies asked per topic by the session layer; null when not configured. */
export interface TopicProxies {
  readonly subscribe: SubscribeProxy | null;
  readonly publish: PublishProxy | null;
}

// How long the node's queued webhooks may take to leave when it shuts down.
const CLOSE_GRACE_MS = 2000;
// How long a node's ledger outbox (Redis) outlives its last write: an entry whose node neither delivered
// nor was reaped by then (every node of the cluster gone) is forgotten.
const OUTBOX_TTL_MS = 3_600_000;
// Events kept per topic in the NATS ledger's outbox (in the topic's key: occupied and vacated alternate,
// so more than a few means the application has been away a while).
const NATS_OUTBOX_MAX = 32;

/** The application integration a node is configured with: each part null when not configured. */
export class Hooks implements TopicProxies {
  readonly connect: ConnectProxy | null;
  readonly subscribe: SubscribeProxy | null;
  readonly publish: PublishProxy | null;
  readonly events: SessionEvents | null;
  readonly idempotency: Idempotency;
  private readonly client: ProxyClient | null;
  private readonly sender: WebhookSender | null;
  private occupancy: Occupancy | null = null;
  /** Who hears of occupancy changes besides the generic webhooks (the Pusher door's channel_occupied). */
  private readonly occupancySinks: OccupancySink[] = [];
  /**
   * Shared state with the other nodes (Redis broker only): occupancy ledger, idempotency keys. Connected
   * on first use, so a node using neither holds no extra Redis connection.
   */
  private readonly redis: Redis | null;

  constructor(
    private readonly config: Config,
    private readonly hub: Hub,
    private readonly stats: Stats,
    metrics: GatewayMetrics,
    private readonly log: Logger,
    /** A broker that de-duplicates keyed publishes itself (NATS with JetStream), else null. */
    keyed: KeyedPublisher | null = null,
    /** The tables shared by the workers of the process (--workers, memory broker), else null. */
    private readonly tables: ProcessTables | null = null,
  ) {
    const anyProxy = config.connectProxyUrl !== '' || config.subscribeProxyUrl !== '' || config.publishProxyUrl !== '';
    const client = anyProxy ? new ProxyClient({ timeoutMs: config.proxyTimeout, maxInflight: config.proxyMaxInflight }, stats, metrics.proxyDuration) : null;
    this.client = client;
    this.connect = client !== null && config.connectProxyUrl !== '' ? new ConnectProxy(client, config.connectProxyUrl, config.maxTopicsPerConn, config.maxTopicLength, log) : null;
    this.subscribe = client !== null && config.subscribeProxyUrl !== '' ? new SubscribeProxy(client, config.subscribeProxyUrl, (t) => hub.ruleOf(t).subscribeProxy, log) : null;
    this.publish = client !== null && config.publishProxyUrl !== '' ? new PublishProxy(client, config.publishProxyUrl, (t) => hub.ruleOf(t).publishProxy, log) : null;

    const webhooks = config.webhookUrl !== '';
    this.redis = /^rediss?:\/\//.test(config.broker) ? hooksRedis(config, log) : null;
    const windowMs = config.idempotencyWindow * 1000;
    this.idempotency =
      this.redis !== null
        ? new RedisIdempotency(this.redis, windowMs, stats)
        : keyed !== null
          ? new JetStreamIdempotency(keyed)
          : tables?.idempotency
            ? new SharedIdempotency(tables.idempotency, windowMs, stats)
            : new LocalIdempotency(windowMs, config.idempotencyMaxKeys, stats);
    this.sender = webhooks
      ? new WebhookSender({ url: config.webhookUrl, secret: config.webhookSecret, maxQueue: config.webhookMaxQueue, timeoutMs: config.proxyTimeout }, stats, metrics.webhookDuration, log)
      : null;
    const members = tables?.members ? new SharedMembership(tables.members, tables.worker) : null;
    this.events = this.sender !== null ? new WebhookSessionEvents(this.sender, (t) => hub.ruleOf(t).webhookPublish, config.webhookDelay, members) : null;
  }

  /** Adds a listener of occupancy changes (call before start); occupancy is followed when anyone listens. */
  onOccupancy(sink: OccupancySink): void {
    this.occupancySinks.push(sink);
  }

  /** Connects what needs connecting and starts following topic occupancy (before the node listens). */
  async start(bus: ControlBus): Promise<void> {
    const sender = this.sender;
    if (sender !== null) this.occupancySinks.push((change, topic, outboxed) => occupancyWebhook(sender, change, topic, outboxed));
    const sinks = this.occupancySinks;
    if (sinks.length === 0) return;
    // A Redis that is away makes occupancy events go unsent (counted) until it is back.
    if (this.redis !== null) await connectOnce(this.redis);
    // Memberships carry the control bus's node id, so that a node gone from the bus can be reaped.
    const ledger = await this.ledger(bus.nodeId);
    const announce: OccupancySink = sinks.length === 1 ? (sinks[0] as OccupancySink) : (change, topic, outboxed) => Promise.all(sinks.map((sink) => sink(change, topic, outboxed)));
    const occupancy = new Occupancy(ledger, announce, this.config.webhookDelay, this.stats, this.log, () => Array.from(this.hub.activeTopics(), ([topic]) => topic));
    this.occupancy = occupancy;
    this.hub.addInterestListener(occupancy);
    bus.onNodeGone((node) => occupancy.nodeGone(node));
  }

  /**
   * Where occupancy is decided: Redis scripts or a JetStream KV bucket with those brokers (cluster-wide),
   * else this node. NATS without JetStream falls back to node-local, with a warning.
   */
  private async ledger(node: string): Promise<OccupancyLedger> {
    if (this.tables?.occupancy) return new SharedLedger(new SharedMembership(this.tables.occupancy, this.tables.worker));
    if (this.redis !== null) {
      const outbox = { max: this.config.webhookMaxQueue, ttlMs: OUTBOX_TTL_MS };
      return new RedisLedger(this.redis, node, this.config.webhookDelay * 2 + 10_000, outbox, () => this.stats.webhookOutboxFull++);
    }
    if (/^(nats|tls):\/\//.test(this.config.broker)) {
      try {
        return await natsLedger(this.config, node, () => this.stats.webhookOutboxFull++);
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, 'no JetStream KV for occupancy: topic_occupied/topic_vacated are node-local');
      }
    }
    return new LocalLedger();
  }

  /**
   * This node is back on the broker after it was away (other nodes may have reaped its memberships, or
   * the broker lost them): the topics it has subscribers of are asserted again.
   */
  rejoined(): void {
    this.occupancy?.reassert();
  }

  async close(): Promise<void> {
    await this.occupancy?.close();
    this.events?.close();
    await this.sender?.close(CLOSE_GRACE_MS);
    await this.idempotency.close();
    this.redis?.disconnect();
    await this.client?.close();
  }
}

async function natsLedger(config: Config, node: string, onFull: () => void): Promise<NatsLedger> {
  const nc = await nats().connect({ ...natsOptions(config.broker, brokerTls(config)), name: `wsgate-hooks-${node}`, maxReconnectAttempts: -1, reconnectTimeWait: 250, reconnectJitter: 250, timeout: 2000 });
  try {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('JetStream did not answer in 2 s')), 2000)));
    const kv = await Promise.race([nc.jetstream().views.kv('wsgate_occupancy', { history: 1 }), late]).finally(() => clearTimeout(timer));
    let up = true;
    void (async () => {
      for await (const st of nc.status()) if (st.type === 'disconnect' || st.type === 'reconnect') up = st.type === 'reconnect';
    })();
    return new NatsLedger(kv, node, () => nc.close(), () => up, { max: NATS_OUTBOX_MAX, ttlMs: OUTBOX_TTL_MS }, onFull);
  } catch (e) {
    await nc.close();
    throw e;
  }
}

/**
 * topic_occupied / topic_vacated to the webhook sender. An event kept in the ledger's outbox carries the
 * outbox's id (a node that takes it over sends the same) and when the ledger decided it (events taken over
 * arrive late: `decided_ms` orders them); the promise is settled when the event left the queue.
 */
function occupancyWebhook(sender: WebhookSender, change: 'occupied' | 'vacated', topic: string, outboxed: Outboxed | undefined): Promise<unknown> | void {
  const name = change === 'occupied' ? 'topic_occupied' : 'topic_vacated';
  if (outboxed === undefined) return sender.emit({ name, topic });
  return new Promise((settled) => sender.emit({ name, topic, decided_ms: outboxed.decidedMs }, outboxed.id, settled));
}

function hooksRedis(config: Config, log: Logger): Redis {
  const tls = brokerTls(config);
  // Reconnects as promptly as the broker connections (an occupancy re-assert waits for it after an outage).
  const r = new (ioredis().Redis)(config.broker, { ...(tls === null ? {} : { tls }), lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, connectTimeout: 2000, connectionName: 'wsgate-hooks', retryStrategy: (times) => Math.min(times * 100, 1000) });
  let warned = false;
  r.on('error', (e: Error) => {
    if (!warned) log.warn({ err: e.message, role: 'hooks' }, 'redis connection error; retrying');
    warned = true;
  });
  r.on('ready', () => (warned = false));
  return r;
}
