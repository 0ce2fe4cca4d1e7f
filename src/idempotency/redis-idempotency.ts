import type { Redis } from 'ioredis';
import type { PublishOutcome } from '../broker/broker';
import type { Stats } from '../metrics/stats';
import { ErrorCode, GatewayError } from '../protocol/codes';
import { connectOnce } from '../hooks/lazy-redis';
import type { Idempotency } from './idempotency';

const PENDING = 'pending';
// A repeat arriving while the first publish is still in flight waits for its seq this long at most.
const WAIT_STEP_MS = 20;
const WAIT_STEPS = 50;

const unavailable = (reason: string) => new GatewayError(ErrorCode.Unavailable, reason);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Cluster-wide keys in Redis: the first publish claims the key with SET NX (expiring with the window),
 * publishes, then stores its seq; a repeat on any node reads that seq. Memory is Redis's, bounded by the
 * window. A first publish that fails deletes its claim.
 */
export class RedisIdempotency implements Idempotency {
  constructor(
    private readonly redis: Redis,
    private readonly windowMs: number,
    private readonly stats: Stats,
  ) {}

  async once(topic: string, key: string, publish: () => PublishOutcome | Promise<PublishOutcome>): Promise<PublishOutcome> {
    // The hash tag keeps every key of a topic in one Redis Cluster slot.
    const k = `wsgate:idem:{${topic}}:${key}`;
    await connectOnce(this.redis);
    try {
      for (let step = 0; step < WAIT_STEPS; step++) {
        if ((await this.redis.set(k, PENDING, 'PX', this.windowMs, 'NX')) === 'OK') return await this.first(k, publish);
        const seen = await this.redis.get(k);
        if (seen !== null && seen !== PENDING) {
          this.stats.idempotentRepeats++;
          return Number(seen);
        }
        // Still pending elsewhere, or just forgotten after a failure (then the next SET NX claims it).
        if (seen === PENDING) await sleep(WAIT_STEP_MS);
      }
      return unavailable('the first publish with this idempotencyKey is still in flight');
    } catch (e) {
      return unavailable(`idempotency store unavailable: ${(e as Error).message}`);
    }
  }

  private async first(k: string, publish: () => PublishOutcome | Promise<PublishOutcome>): Promise<PublishOutcome> {
    let outcome: PublishOutcome;
    try {
      outcome = await publish();
    } catch {
      outcome = unavailable('broker failed');
    }
    if (outcome instanceof GatewayError) await this.redis.del(k);
    else await this.redis.set(k, String(outcome), 'KEEPTTL', 'XX');
    return outcome;
  }

  async close(): Promise<void> {}
}
