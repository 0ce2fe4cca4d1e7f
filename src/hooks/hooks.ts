import type { Config } from '../config/schema';
import type { Logger } from '../log';
import type { GatewayMetrics } from '../metrics/gateway-metrics';
import type { Stats } from '../metrics/stats';
import { ConnectProxy } from './connect-proxy';
import { ProxyClient } from './proxy-client';
import { PublishProxy, SubscribeProxy } from './topic-proxies';

/** The proxies asked per topic by the session layer; null when not configured. */
export interface TopicProxies {
  readonly subscribe: SubscribeProxy | null;
  readonly publish: PublishProxy | null;
}

const patterns = (list: string): string[] => list.split(',');

/** The application integration a node is configured with: each part null when not configured. */
export class Hooks implements TopicProxies {
  readonly connect: ConnectProxy | null;
  readonly subscribe: SubscribeProxy | null;
  readonly publish: PublishProxy | null;
  private readonly client: ProxyClient | null;

  constructor(config: Config, stats: Stats, metrics: GatewayMetrics, log: Logger) {
    const anyProxy = config.connectProxyUrl !== '' || config.subscribeProxyUrl !== '' || config.publishProxyUrl !== '';
    this.client = anyProxy ? new ProxyClient({ timeoutMs: config.proxyTimeout, maxInflight: config.proxyMaxInflight }, stats, metrics.proxyDuration) : null;
    this.connect =
      this.client !== null && config.connectProxyUrl !== ''
        ? new ConnectProxy(this.client, config.connectProxyUrl, config.maxTopicsPerConn, config.maxTopicLength, log)
        : null;
    const client = this.client;
    this.subscribe = client !== null && config.subscribeProxyUrl !== '' ? new SubscribeProxy(client, config.subscribeProxyUrl, patterns(config.subscribeProxyTopics), log) : null;
    this.publish = client !== null && config.publishProxyUrl !== '' ? new PublishProxy(client, config.publishProxyUrl, patterns(config.publishProxyTopics), log) : null;
  }

  async close(): Promise<void> {
    await this.client?.close();
  }
}
