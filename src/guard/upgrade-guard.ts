import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { Config } from '../config/schema';
import type { Stats, UpgradeResult } from '../metrics/stats';
import { ErrorCode, GatewayError } from '../protocol/codes';
import { ClientAddressResolver, limitKey } from './client-address';
import { type ConnectionCount, SharedConnectionCount, localConnectionCount } from './connection-count';
import { type AddressLimiter, AddressLimits } from './ip-limits';
import { OriginPolicy } from './origin';
import { type SharedAddressMemory, SharedAddressLimits, createAddressMemory } from './shared-address-table';

export interface GuardRefusal {
  readonly result: Extract<UpgradeResult, 'origin_not_allowed' | 'ip_limit' | 'ip_rate'>;
  readonly error: GatewayError;
}

/** What an admitted upgrade holds: the address key its connection counts under (null: not tracked). */
export type AddressKey = string | null;

const decoder = new TextDecoder();

/**
 * The guardrails' counts shared by the worker threads of one process (--workers): the connection
 * limit and the per-address table. Made once by the supervisor; absent, each gateway counts alone.
 */
export interface GuardMemory {
  readonly connections: SharedArrayBuffer;
  readonly addresses: SharedAddressMemory | null;
}

export function createGuardMemory(config: Config): GuardMemory {
  const perAddress = config.maxConnectionsPerIp > 0 || config.connectRatePerIp > 0;
  return { connections: new SharedArrayBuffer(4), addresses: perAddress ? createAddressMemory(config.maxConnections) : null };
}

/**
 * The checks an upgrade passes before anything else is spent on it: the Origin policy and the
 * per-address limits. Runs once per upgrade, never per message or delivery.
 */
export class UpgradeGuard {
  readonly addresses: AddressLimiter;
  private readonly connections: ConnectionCount;
  private readonly origins: OriginPolicy;
  private readonly resolver: ClientAddressResolver;

  constructor(
    private readonly config: Config,
    stats: Stats,
    shared: GuardMemory | null = null,
  ) {
    this.origins = OriginPolicy.fromConfig(config.allowedOrigins);
    const { maxConnectionsPerIp: perIp, connectRatePerIp: rate } = config;
    this.addresses = shared?.addresses ? new SharedAddressLimits(shared.addresses, perIp, rate) : new AddressLimits(perIp, rate);
    this.connections = shared === null ? localConnectionCount(stats, config.maxConnections) : new SharedConnectionCount(shared.connections, config.maxConnections);
    this.resolver = new ClientAddressResolver(config.trustedProxies);
  }

  /**
   * Whether --max-connections is reached (open connections and upgrades waiting for admission, across
   * every worker); when not, a slot is held for this upgrade until its handler returns.
   */
  full(): boolean {
    return this.connections.full();
  }

  /** An upgrade started (+1) or stopped (−1) waiting for its admission. */
  waiting(delta: number): void {
    this.connections.add(delta);
  }

  /** Reads the request (valid only during the upgrade handler); a refusal or the address key to hold. */
  admit(res: HttpResponse, req: HttpRequest): GuardRefusal | AddressKey {
    if (!this.origins.allows(req.getHeader('origin'), req.getHeader('host'))) {
      return { result: 'origin_not_allowed', error: new GatewayError(ErrorCode.OriginNotAllowed, 'this origin may not open a socket here (--allowed-origins)') };
    }
    if (!this.addresses.enabled) return null;
    const address = this.resolver.resolve(decoder.decode(res.getRemoteAddressAsText()), req.getHeader('x-forwarded-for'));
    // uWS always knows the peer; no address means nothing to count under, not a reason to refuse.
    if (address === null) return null;
    const key = limitKey(address);
    return this.refusal(this.addresses.admit(key, Date.now())) ?? key;
  }

  /** The per-address connection limit again, right before an upgrade that waited completes. */
  stillRoom(key: AddressKey): GuardRefusal | null {
    return key === null ? null : this.refusal(this.addresses.room(key));
  }

  private refusal(code: ReturnType<AddressLimits['room']>): GuardRefusal | null {
    switch (code) {
      case null:
        return null;
      case 'too_many_connections_per_ip':
        return { result: 'ip_limit', error: new GatewayError(ErrorCode.TooManyConnectionsPerIp, `this address holds its limit of ${this.config.maxConnectionsPerIp} connections`) };
      case 'connect_rate_limited':
        return { result: 'ip_rate', error: new GatewayError(ErrorCode.ConnectRateLimited, `more than ${this.config.connectRatePerIp} upgrades per second from this address; retry with backoff`) };
    }
  }

  opened(key: AddressKey): void {
    this.connections.add(1);
    if (key !== null) this.addresses.opened(key, Date.now());
  }

  closed(key: AddressKey): void {
    this.connections.add(-1);
    if (key !== null) this.addresses.closed(key, Date.now());
  }

  stop(): void {
    this.addresses.stop();
  }
}
