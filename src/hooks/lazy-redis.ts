import type { Redis } from 'ioredis';

const connecting = new WeakMap<Redis, Promise<void>>();

/**
 * Connects a connection created with lazyConnect on its first use; every caller waits for that same
 * attempt. Never rejects: a Redis that is away shows in the commands that follow (they fail fast).
 */
export function connectOnce(redis: Redis): Promise<void> {
  let p = connecting.get(redis);
  if (p === undefined) {
    p = redis.connect().catch(() => undefined);
    connecting.set(redis, p);
  }
  return p;
}
