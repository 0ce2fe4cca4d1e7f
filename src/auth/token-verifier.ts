import { type KeyObject, timingSafeEqual, createHmac, verify as verifySignature } from 'node:crypto';
import { ErrorCode, GatewayError } from '../protocol/codes';
import type { JwsAlgorithm, KeySource, VerifyKey } from './jwt-keys';
import { TopicPatterns } from './topic-patterns';

/** What a verified token grants one connection. */
export interface Grant {
  readonly subject: string | undefined;
  /** Seconds since the epoch, when the token stops being valid (its `exp` plus the clock skew allowance). */
  readonly expiresAt: number | undefined;
  readonly subscribe: TopicPatterns;
  readonly publish: TopicPatterns;
  /** Application data about the user (token claim or connect-proxy answer), passed on to proxies and webhooks. */
  readonly info?: unknown;
}

export const openGrant: Grant = { subject: undefined, expiresAt: undefined, subscribe: TopicPatterns.any, publish: TopicPatterns.any };

/** Claims every token must satisfy besides its signature. */
export interface ClaimRules {
  /** Accepted `aud` values; empty = not checked. A token passes when its `aud` names one of them. */
  readonly audiences: readonly string[];
  /** Required `iss`; '' = not checked. */
  readonly issuer: string;
  /** Seconds of clock difference tolerated on `exp` and `nbf`. */
  readonly clockSkewS: number;
}

// Far above any real token; bounds the decoding work an unauthenticated client can ask for.
export const MAX_TOKEN_LENGTH = 8192;

const HASH: Record<JwsAlgorithm, string | null> = { HS256: 'sha256', RS256: 'sha256', RS384: 'sha384', RS512: 'sha512', ES256: 'sha256', ES384: 'sha384', EdDSA: null };

const invalid = (reason: string) => new GatewayError(ErrorCode.Unauthorized, `invalid token: ${reason}`);

export function patternsClaim(v: unknown): TopicPatterns | null {
  if (v === undefined) return TopicPatterns.any;
  if (!Array.isArray(v) || !v.every((p): p is string => typeof p === 'string')) return null;
  return new TopicPatterns(v);
}

function decodeJson(segment: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function signatureValid(alg: JwsAlgorithm, key: KeyObject, input: Buffer, signature: Buffer): boolean {
  if (alg === 'HS256') {
    const expected = createHmac('sha256', key).update(input).digest();
    return expected.length === signature.length && timingSafeEqual(expected, signature);
  }
  try {
    // JWS ECDSA signatures are r||s (IEEE P1363), not DER.
    return verifySignature(HASH[alg], input, alg.startsWith('ES') ? { key, dsaEncoding: 'ieee-p1363' } : key, signature);
  } catch {
    return false;
  }
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * Verifies connection JWTs (compact JWS) synchronously with node:crypto, so an upgrade is answered inside
 * uWS's upgrade handler (an upgrade completed later, from a promise, is what uWS.js 20.57 can close right
 * after open: docs/protocol.md, "Authentication"). The key source pins the algorithms: a token's `alg`
 * only selects among those its key type allows, so `none` or HS256-with-a-public-key never verifies.
 */
export class TokenVerifier {
  constructor(
    readonly keys: KeySource,
    private readonly rules: ClaimRules,
  ) {}

  verify(token: string, now = Date.now() / 1000): Grant | GatewayError {
    if (token === '') return new GatewayError(ErrorCode.Unauthorized, 'a token is required');
    if (token.length > MAX_TOKEN_LENGTH) return invalid(`longer than ${MAX_TOKEN_LENGTH} characters`);
    const parts = token.split('.');
    if (parts.length !== 3 || !parts.every((p) => BASE64URL.test(p))) return invalid('not a compact JWS');
    const [head, body, sig] = parts as [string, string, string];
    const header = decodeJson(head);
    if (header === null) return invalid('malformed header');
    const alg = header.alg;
    if (typeof alg !== 'string') return invalid('no alg');
    // No extension is understood; b64:false would change what is signed.
    if (header.crit !== undefined || header.b64 !== undefined) return invalid('unsupported header parameters');
    const kid = typeof header.kid === 'string' ? header.kid : undefined;
    const candidates = this.keys.keysFor(alg, kid);
    if (candidates instanceof GatewayError) return candidates;
    const input = Buffer.from(`${head}.${body}`, 'ascii');
    const signature = Buffer.from(sig, 'base64url');
    if (!candidates.some((k: VerifyKey) => signatureValid(alg as JwsAlgorithm, k.key, input, signature))) return invalid('signature verification failed');
    const claims = decodeJson(body);
    if (claims === null) return invalid('malformed claims');
    return this.grant(claims, now);
  }

  private grant(claims: Record<string, unknown>, now: number): Grant | GatewayError {
    const { exp, nbf, iss, aud, sub } = claims;
    const skew = this.rules.clockSkewS;
    if (exp !== undefined && typeof exp !== 'number') return invalid('exp must be a number');
    if (nbf !== undefined && typeof nbf !== 'number') return invalid('nbf must be a number');
    if (sub !== undefined && typeof sub !== 'string') return invalid('sub must be a string');
    if (exp !== undefined && now >= exp + skew) return invalid('expired');
    if (nbf !== undefined && now + skew < nbf) return invalid('not valid yet (nbf)');
    if (this.rules.issuer !== '' && iss !== this.rules.issuer) return invalid('wrong issuer');
    if (this.rules.audiences.length > 0) {
      const given = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
      if (!given.some((a) => typeof a === 'string' && this.rules.audiences.includes(a))) return invalid('wrong audience');
    }
    const subscribe = patternsClaim(claims.subscribe);
    const publish = patternsClaim(claims.publish);
    if (subscribe === null || publish === null) return invalid('subscribe/publish claims must be arrays of strings');
    return { subject: sub, expiresAt: exp === undefined ? undefined : exp + skew, subscribe, publish, info: claims.info };
  }
}
