import type { Config } from '../config/schema';
import { jwksKeys, publicKeyFile, secretKeys } from './jwt-keys';
import { TokenVerifier } from './token-verifier';

/** The token verifier the config asks for, or null when connections need no token. */
export function createVerifier(config: Config): TokenVerifier | null {
  const keys =
    config.jwtSecret !== ''
      ? secretKeys(config.jwtSecret)
      : config.jwtPublicKey !== ''
        ? publicKeyFile(config.jwtPublicKey)
        : config.jwtJwksUrl !== ''
          ? jwksKeys(config.jwtJwksUrl, { maxAgeS: config.jwtJwksMaxAge, cooldownS: config.jwtJwksCooldown })
          : null;
  if (keys === null) return null;
  const audiences = config.jwtAudience.split(',').map((a) => a.trim()).filter((a) => a !== '');
  return new TokenVerifier(keys, { audiences, issuer: config.jwtIssuer, clockSkewS: config.jwtClockSkew });
}
