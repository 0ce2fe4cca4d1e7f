import type { Redis } from 'ioredis';
import type { OccupancyLedger } from './occupancy';

// Per topic: a set of the nodes holding subscribers, and a marker naming the node that saw it empty
// last and will confirm the vacate after the delay. Hash tags keep both keys in one Redis Cluster slot.
const OCCUPY = `
local added = redis.call('SADD', KEYS[1], ARGV[1])
if added == 1 and redis.call('SCARD', KEYS[1]) == 1 then
  if redis.call('DEL', KEYS[2]) == 1 then return 0 end
  return 1
end
return 0`;
const VACATE = `
redis.call('SREM', KEYS[1], ARGV[1])
if redis.call('SCARD', KEYS[1]) == 0 then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`;
const CONFIRM = `
if redis.call('GET', KEYS[2]) == ARGV[1] and redis.call('SCARD', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
  return 1
end
return 0`;

/**
 * Cluster-wide occupancy in Redis: each script runs atomically, so exactly one node sees the topic
 * become occupied, and exactly one (the last to leave) confirms it vacated. A node that dies without
 * closing leaves its membership behind: the topic stays occupied until its key is deleted (documented).
 */
export class RedisLedger implements OccupancyLedger {
  constructor(
    private readonly redis: Redis,
    private readonly node: string,
    /** How long a vacate marker may outlive the delay before Redis drops it. */
    private readonly markerTtlMs: number,
  ) {}

  private keys(topic: string): [string, string] {
    return [`wsgate:occ:{${topic}}`, `wsgate:vac:{${topic}}`];
  }

  async occupy(topic: string): Promise<boolean> {
    return (await this.redis.eval(OCCUPY, 2, ...this.keys(topic), this.node)) === 1;
  }

  async vacate(topic: string): Promise<boolean> {
    return (await this.redis.eval(VACATE, 2, ...this.keys(topic), this.node, this.markerTtlMs)) === 1;
  }

  async confirmVacated(topic: string): Promise<boolean> {
    return (await this.redis.eval(CONFIRM, 2, ...this.keys(topic), this.node)) === 1;
  }

  async close(): Promise<void> {}
}
