import type { Config } from '../config/schema';
import type { Logger } from '../log';
import type { GatewayMetrics } from '../metrics/gateway-metrics';
import type { Stats } from '../metrics/stats';
import { ConnectProxy } from './connect-proxy';
import { ProxyClient } from './proxy-client';

/** The application integration a node is configured with: each part null when not configured. */
export class Hooks {
  readonly connect: ConnectProxy | null;
  private readonly client: ProxyClient | null;

  constructor(config: Config, stats: Stats, metrics: GatewayMetrics, log: Logger) {
    const anyProxy = config.connectProxyUrl !== '' || config.subscribeProxyUrl !== '' || config.publishProxyUrl !== '';
    this.client = anyProxy ? new ProxyClient({ timeoutMs: config.proxyTimeout, maxInflight: config.proxyMaxInflight }, stats, metrics.proxyDuration) : null;
    this.connect =
      this.client !== null && config.connectProxyUrl !== ''
        ? new ConnectProxy(this.client, config.connectProxyUrl, config.maxTopicsPerConn, config.maxTopicLength, log)
        : null;
  }

  async close(): Promise<void> {
    await this.client?.close();
  }
}
