import { readFileSync } from 'node:fs';
import { type JsonWebKey, type KeyObject, createPublicKey, createSecretKey } from 'node:crypto';
import type { JWK, RemoteJWKSet } from 'jose';
import { jose } from '../optional-deps';
import { ErrorCode, GatewayError } from '../protocol/codes';

/** Signature algorithms wsgate verifies; each belongs to exactly one key type. */
export type JwsAlgorithm = 'HS256' | 'RS256' | 'RS384' | 'RS512' | 'ES256' | 'ES384' | 'EdDSA';

/** A key and the algorithms it may verify: the token's `alg` header never chooses the key type. */
export interface VerifyKey {
  readonly key: KeyObject;
  readonly algorithms: readonly JwsAlgorithm[];
}

/**
 * Where verification keys come from. `keysFor` is synchronous on purpose: the upgrade must finish
 * inside uWS's upgrade handler (see docs/protocol.md, "Authentication"), so no key may need an await.
 */
export interface KeySource {
  /** Candidate keys for a token header (several only when a JWKS has no `kid` to tell them apart), or why none. */
  keysFor(alg: string, kid: string | undefined): readonly VerifyKey[] | GatewayError;
  /** Settles once the source can answer (JWKS: the first fetch, or its failure); never rejects. */
  ready(): Promise<void>;
  /** False while a JWKS has never loaded. */
  loaded(): boolean;
}

/** The algorithms a public key may verify, pinned by its type (and curve). */
function algorithmsOf(key: KeyObject): readonly JwsAlgorithm[] | null {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return ['RS256', 'RS384', 'RS512'];
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      return curve === 'prime256v1' ? ['ES256'] : curve === 'secp384r1' ? ['ES384'] : null;
    }
    case 'ed25519':
      return ['EdDSA'];
    default:
      return null;
  }
}

const unauthorized = (reason: string) => new GatewayError(ErrorCode.Unauthorized, `invalid token: ${reason}`);

/** One fixed key (a shared secret or a PEM public key). */
class StaticKeys implements KeySource {
  private readonly keys: readonly VerifyKey[];
  constructor(key: VerifyKey) {
    this.keys = [key];
  }
  keysFor(alg: string): readonly VerifyKey[] | GatewayError {
    return (this.keys[0] as VerifyKey).algorithms.includes(alg as JwsAlgorithm) ? this.keys : unauthorized(`algorithm ${alg} is not accepted for this key`);
  }
  ready(): Promise<void> {
    return Promise.resolve();
  }
  loaded(): boolean {
    return true;
  }
}

export function secretKeys(secret: string): KeySource {
  return new StaticKeys({ key: createSecretKey(Buffer.from(secret, 'utf8')), algorithms: ['HS256'] });
}

export function publicKeyFile(path: string): KeySource {
  const key = createPublicKey(readFileSync(path));
  const algorithms = algorithmsOf(key);
  if (algorithms === null) throw new Error(`unsupported public key type ${key.asymmetricKeyType} in ${path}: use RSA, EC P-256/P-384 or Ed25519`);
  return new StaticKeys({ key, algorithms });
}

export interface JwksOptions {
  /** Seconds a fetched key set counts as fresh; after that it is refetched in the background. */
  readonly maxAgeS: number;
  /** Seconds after a fetch before an unknown `kid` may trigger another. */
  readonly cooldownS: number;
}

// Keys a JWKS may hold before the rest are ignored: a bound on import work per fetch.
const MAX_JWKS_KEYS = 100;
const JWKS_TIMEOUT_MS = 5000;
const MIN_RETRY_MS = 1000;

/**
 * Keys from an OpenID provider's JWKS URL, fetched, cached and rate-limited by jose's remote key set.
 * Lookups read the cached set synchronously; an unknown `kid` starts a refetch (at most once per cooldown)
 * and is answered `unavailable` meanwhile, so a client retries once the rotated key has arrived.
 */
class JwksKeys implements KeySource {
  private readonly remote: RemoteJWKSet;
  private readonly retryMs: number;
  private lastFetchAt = 0;
  private imported: { set: object; keys: { jwk: JWK; key: VerifyKey }[] } | null = null;
  private readonly first: Promise<void>;

  constructor(url: URL, options: JwksOptions) {
    this.remote = jose().createRemoteJWKSet(url, { cacheMaxAge: options.maxAgeS * 1000, cooldownDuration: options.cooldownS * 1000, timeoutDuration: JWKS_TIMEOUT_MS });
    // Failed fetches are spaced too (jose's cooldown only follows successful ones): an unreachable
    // provider is not asked again on every upgrade.
    this.retryMs = Math.max(options.cooldownS * 1000, MIN_RETRY_MS);
    this.lastFetchAt = Date.now();
    this.first = this.remote.reload().catch(() => undefined);
  }

  /** Starts a fetch when none is under way and the last one is old enough; true when one is under way after. */
  private fetchIfDue(): boolean {
    if (this.remote.reloading) return true;
    if (this.remote.coolingDown || Date.now() - this.lastFetchAt < this.retryMs) return false;
    this.lastFetchAt = Date.now();
    // A failed fetch leaves the cached keys in place.
    this.remote.reload().catch(() => undefined);
    return true;
  }

  ready(): Promise<void> {
    return this.first;
  }

  loaded(): boolean {
    return this.remote.jwks() !== undefined;
  }

  private current(): { jwk: JWK; key: VerifyKey }[] | null {
    const set = this.remote.jwks();
    if (set === undefined) return null;
    if (this.imported?.set !== set) {
      const keys: { jwk: JWK; key: VerifyKey }[] = [];
      for (const jwk of set.keys.slice(0, MAX_JWKS_KEYS)) {
        if (jwk.use !== undefined && jwk.use !== 'sig') continue;
        try {
          const key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
          const algorithms = algorithmsOf(key);
          if (algorithms !== null) keys.push({ jwk, key: { key, algorithms: jwk.alg === undefined ? algorithms : algorithms.filter((a) => a === jwk.alg) } });
        } catch {
          // A key this runtime cannot import (private, symmetric, unknown type) is skipped, as jose does.
        }
      }
      this.imported = { set, keys };
    }
    return this.imported.keys;
  }

  keysFor(alg: string, kid: string | undefined): readonly VerifyKey[] | GatewayError {
    if (!this.remote.fresh) this.fetchIfDue();
    const keys = this.current();
    if (keys === null) return new GatewayError(ErrorCode.Unavailable, 'signing keys are not loaded yet; retry');
    const found = keys.filter((k) => (kid === undefined || k.jwk.kid === kid) && k.key.algorithms.includes(alg as JwsAlgorithm)).map((k) => k.key);
    if (found.length > 0) return found;
    if (this.fetchIfDue()) return new GatewayError(ErrorCode.Unavailable, 'signing key not known yet; keys are being refetched, retry');
    return unauthorized(kid === undefined ? `no ${alg} key in the key set` : `unknown key id ${JSON.stringify(kid.slice(0, 64))}`);
  }
}

export function jwksKeys(url: string, options: JwksOptions): KeySource {
  return new JwksKeys(new URL(url), options);
}
