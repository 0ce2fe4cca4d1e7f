import { readFileSync } from 'node:fs';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { jwtVerify } from 'jose';
import { ErrorCode, GatewayError } from '../protocol/codes';
import { TopicPatterns } from './topic-patterns';

/** What a verified token grants one connection. */
export interface Grant {
  readonly subject: string | undefined;
  /** Seconds since the epoch, when the token stops being valid. */
  readonly expiresAt: number | undefined;
  readonly subscribe: TopicPatterns;
  readonly publish: TopicPatterns;
  /** Application data about the user (token claim or connect-proxy answer), passed on to proxies and webhooks. */
  readonly info?: unknown;
}

export const openGrant: Grant = { subject: undefined, expiresAt: undefined, subscribe: TopicPatterns.any, publish: TopicPatterns.any };

export function patternsClaim(v: unknown): TopicPatterns | null | undefined {
  if (v === undefined) return TopicPatterns.any;
  if (!Array.isArray(v) || !v.every((p): p is string => typeof p === 'string')) return null;
  return new TopicPatterns(v);
}

/** Verifies connection JWTs: HS256 with a shared secret, or RS256/ES256 with a PEM public key. */
export class TokenVerifier {
  private constructor(
    private readonly key: Uint8Array | KeyObject,
    private readonly algorithms: string[],
  ) {}

  static fromSecret(secret: string): TokenVerifier {
    return new TokenVerifier(new TextEncoder().encode(secret), ['HS256']);
  }

  static fromPublicKeyFile(path: string): TokenVerifier {
    const key = createPublicKey(readFileSync(path));
    const algorithms = key.asymmetricKeyType === 'rsa' ? ['RS256'] : key.asymmetricKeyType === 'ec' ? ['ES256'] : null;
    if (algorithms === null) throw new Error(`unsupported public key type ${key.asymmetricKeyType} in ${path}: use RSA or EC P-256`);
    return new TokenVerifier(key, algorithms);
  }

  async verify(token: string): Promise<Grant | GatewayError> {
    if (token === '') return new GatewayError(ErrorCode.Unauthorized, 'a token is required');
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.key, { algorithms: this.algorithms }));
    } catch (e) {
      return new GatewayError(ErrorCode.Unauthorized, `invalid token: ${(e as { code?: string }).code ?? 'ERR_JWT_INVALID'}`);
    }
    const subscribe = patternsClaim(payload.subscribe);
    const publish = patternsClaim(payload.publish);
    if (subscribe === null || publish === null) {
      return new GatewayError(ErrorCode.Unauthorized, 'invalid token: subscribe/publish claims must be arrays of strings');
    }
    return { subject: payload.sub, expiresAt: payload.exp, subscribe: subscribe ?? TopicPatterns.any, publish: publish ?? TopicPatterns.any, info: payload.info };
  }
}
