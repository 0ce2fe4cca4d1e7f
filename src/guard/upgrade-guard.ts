import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { Config } from '../config/schema';
import type { UpgradeResult } from '../metrics/stats';
import { ErrorCode, GatewayError } from '../protocol/codes';
import { ClientAddressResolver, limitKey } from './client-address';
import { AddressLimits } from './ip-limits';
import { OriginPolicy } from './origin';

export interface GuardRefusal {
  readonly result: Extract<UpgradeResult, 'origin_not_allowed' | 'ip_limit' | 'ip_rate'>;
  readonly error: GatewayError;
}

/** What an admitted upgrade holds: the address key its connection counts under (null: not tracked). */
export type AddressKey = string | null;

const decoder = new TextDecoder();

/**
 * The checks an upgrade passes before anything else is spent on it: the Origin policy and the
 * per-address limits. Runs once per upgrade, never per message or delivery.
 */
export class UpgradeGuard {
  readonly addresses: AddressLimits;
  private readonly origins: OriginPolicy;
  private readonly resolver: ClientAddressResolver;

  constructor(private readonly config: Config) {
    this.origins = OriginPolicy.fromConfig(config.allowedOrigins);
    this.addresses = new AddressLimits(config.maxConnectionsPerIp, config.connectRatePerIp);
    this.resolver = new ClientAddressResolver(config.trustedProxies);
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
    if (key !== null) this.addresses.opened(key, Date.now());
  }

  closed(key: AddressKey): void {
    if (key !== null) this.addresses.closed(key, Date.now());
  }

  stop(): void {
    this.addresses.stop();
  }
}
