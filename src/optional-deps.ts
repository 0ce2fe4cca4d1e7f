import type * as Ioredis from 'ioredis';
import type * as Jose from 'jose';
import type * as Nats from 'nats';
import type * as Undici from 'undici';

/*
 * The broker, HTTP-client and JWKS packages, required on first use. Loading undici, nats and ioredis
 * took ~60 % of the time to load the gateway (and again in every worker thread), while a gateway on
 * the memory broker without hooks or a JWKS URL uses none of them. Only types are
 * imported statically; each package is required by the first object that needs it.
 */

export function undici(): typeof Undici {
  return require('undici') as typeof Undici;
}

export function nats(): typeof Nats {
  return require('nats') as typeof Nats;
}

export function jose(): typeof Jose {
  return require('jose') as typeof Jose;
}

export function ioredis(): typeof Ioredis {
  return require('ioredis') as typeof Ioredis;
}
