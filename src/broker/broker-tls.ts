import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema';

/** Client TLS material for the broker connection beyond what the URL says (a private CA, a client certificate). */
export interface BrokerTls {
  ca?: string;
  cert?: string;
  key?: string;
}

/** Reads the configured PEM files once (loadConfig has checked they are readable); null when none is set. */
export function brokerTls(config: Config): BrokerTls | null {
  const read = (path: string) => (path === '' ? undefined : readFileSync(path, 'utf8'));
  const tls: BrokerTls = { ca: read(config.brokerTlsCa), cert: read(config.brokerTlsCert), key: read(config.brokerTlsKey) };
  return tls.ca === undefined && tls.cert === undefined ? null : tls;
}
