import { Redis } from 'ioredis';
import { brokerTls } from '../broker/broker-tls';
import type { Config } from '../config/schema';
import type { Logger } from '../log';
import type { GatewayMetrics } from '../metrics/gateway-metrics';
import type { Stats } from '../metrics/stats';
import type { Hub } from '../pubsub/hub';
import { newEpoch } from '../pubsub/topic-state';
import { ConnectProxy } from './connect-proxy';
import { LocalLedger, Occupancy, type OccupancyLedger } from './occupancy';
import { ProxyClient } from './proxy-client';
import { RedisLedger } from './redis-ledger';
import { type SessionEvents, WebhookSessionEvents } from './session-events';
import { PublishProxy, SubscribeProxy } from './topic-proxies';
import { WebhookSender } from './webhook-sender';

/** The proxies asked per topic by the session layer; null when not configured. */
export interface TopicProxies {
  readonly subscribe: SubscribeProxy | null;
  readonly publish: PublishProxy | null;
}

const patterns = (list: string): string[] => (list === '' ? [] : list.split(','));

// How long the node's queued webhooks may take to leave when it shuts down.
const CLOSE_GRACE_MS = 2000;

/** The application integration a node is configured with: each part null when not configured. */
export class Hooks implements TopicProxies {
  readonly connect: ConnectProxy | null;
  readonly subscribe: SubscribeProxy | null;
  readonly publish: PublishProxy | null;
  readonly events: SessionEvents | null;
  private readonly client: ProxyClient | null;
  private readonly sender: WebhookSender | null;
  private readonly occupancy: Occupancy | null;
  /** Shared state with the other nodes (Redis broker only): occupancy ledger. */
  private readonly redis: Redis | null;

  constructor(config: Config, hub: Hub, stats: Stats, metrics: GatewayMetrics, log: Logger) {
    const anyProxy = config.connectProxyUrl !== '' || config.subscribeProxyUrl !== '' || config.publishProxyUrl !== '';
    const client = anyProxy ? new ProxyClient({ timeoutMs: config.proxyTimeout, maxInflight: config.proxyMaxInflight }, stats, metrics.proxyDuration) : null;
    this.client = client;
    this.connect = client !== null && config.connectProxyUrl !== '' ? new ConnectProxy(client, config.connectProxyUrl, config.maxTopicsPerConn, config.maxTopicLength, log) : null;
    this.subscribe = client !== null && config.subscribeProxyUrl !== '' ? new SubscribeProxy(client, config.subscribeProxyUrl, patterns(config.subscribeProxyTopics), log) : null;
    this.publish = client !== null && config.publishProxyUrl !== '' ? new PublishProxy(client, config.publishProxyUrl, patterns(config.publishProxyTopics), log) : null;

    const webhooks = config.webhookUrl !== '';
    this.redis = webhooks && /^rediss?:\/\//.test(config.broker) ? hooksRedis(config, log) : null;
    this.sender = webhooks
      ? new WebhookSender({ url: config.webhookUrl, secret: config.webhookSecret, maxQueue: config.webhookMaxQueue, timeoutMs: config.proxyTimeout }, stats, metrics.webhookDuration, log)
      : null;
    this.events = this.sender !== null ? new WebhookSessionEvents(this.sender, patterns(config.webhookPublishTopics)) : null;
    if (this.sender !== null) {
      const ledger: OccupancyLedger = this.redis !== null ? new RedisLedger(this.redis, newEpoch(), config.webhookDelay * 2 + 10_000) : new LocalLedger();
      this.occupancy = new Occupancy(ledger, this.sender, config.webhookDelay, stats, log);
      hub.addInterestListener(this.occupancy);
    } else this.occupancy = null;
  }

  /** Connects what needs connecting; a Redis that is away only makes occupancy events go unsent (counted). */
  async start(): Promise<void> {
    await this.redis?.connect().catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.occupancy?.close();
    await this.sender?.close(CLOSE_GRACE_MS);
    this.redis?.disconnect();
    await this.client?.close();
  }
}

function hooksRedis(config: Config, log: Logger): Redis {
  const tls = brokerTls(config);
  const r = new Redis(config.broker, { ...(tls === null ? {} : { tls }), lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, connectTimeout: 2000, connectionName: 'wsgate-hooks' });
  let warned = false;
  r.on('error', (e: Error) => {
    if (!warned) log.warn({ err: e.message, role: 'hooks' }, 'redis connection error; retrying');
    warned = true;
  });
  r.on('ready', () => (warned = false));
  return r;
}
