import type { Redis } from 'ioredis';
import type { OccupancyLedger, TakenOver, Verdict } from './occupancy';

// A decision to announce is written in the deciding node's outbox (KEYS[4], a hash: event id ARGV[2] ->
// "change\ndecided ms\ntopic") in the same script, so it outlives the node: the node deletes the entry
// once the webhook left (acknowledged or given up), and whoever reaps a dead node takes its outbox over
// (TAKEOVER) and sends what is left. Answers {decided ms, 1 if kept (0: outbox full, counted)}. The outbox
// key is outside the topic's slot: the ledger needs one Redis (or Sentinel), as the broker does.
const RECORD = `
local function record(change)
  local t = redis.call('TIME')
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if redis.call('HLEN', KEYS[4]) >= tonumber(ARGV[4]) then return {ms, 0} end
  redis.call('HSET', KEYS[4], ARGV[2], change .. '\\n' .. ms .. '\\n' .. ARGV[3])
  redis.call('PEXPIRE', KEYS[4], ARGV[5])
  return {ms, 1}
end
`;
const TAKEOVER = `
local all = redis.call('HGETALL', KEYS[1])
if #all == 0 then return all end
for i = 1, #all, 2 do redis.call('HSET', KEYS[2], all[i], all[i + 1]) end
redis.call('DEL', KEYS[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return all`;

// Per topic: a set of the nodes holding subscribers, and a marker naming the node that saw it empty
// last and will confirm the vacate after the delay. Hash tags keep both keys in one Redis Cluster slot.
const OCCUPY = `${RECORD}
local added = redis.call('SADD', KEYS[1], ARGV[1])
if added == 1 and redis.call('SCARD', KEYS[1]) == 1 then
  if redis.call('DEL', KEYS[2]) == 1 then return 0 end
  return record('occupied')
end
return 0`;
// ARGV[1] leaves (itself, or reaped by ARGV[2] after it stopped heartbeating): only the call that removed
// the last member makes ARGV[2] the confirmer; a node already reaped changes nothing. A reaper also takes
// over a vacate the gone node was still to confirm.
// A reaped node is remembered (KEYS[3], for a day) so that its return can be told from a lost membership.
const VACATE = `
local left = redis.call('SREM', KEYS[1], ARGV[1]) == 1
if left and ARGV[1] ~= ARGV[2] then
  redis.call('SADD', KEYS[3], ARGV[1])
  redis.call('PEXPIRE', KEYS[3], 86400000)
end
if redis.call('SCARD', KEYS[1]) == 0 and (left or (ARGV[1] ~= ARGV[2] and redis.call('GET', KEYS[2]) == ARGV[1])) then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0`;
// ARGV[1] is back after being away. Still a member: nothing. Reaped meanwhile: a member again, and the
// first one back on an empty topic announces it occupied unless a vacate was still pending (then that is
// cancelled and neither is announced). Neither (the broker lost its state): a member again, silently.
const REOCCUPY = `${RECORD}
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 0 end
local reaped = redis.call('SREM', KEYS[3], ARGV[1]) == 1
redis.call('SADD', KEYS[1], ARGV[1])
if reaped and redis.call('SCARD', KEYS[1]) == 1 then
  if redis.call('DEL', KEYS[2]) == 1 then return 0 end
  return record('occupied')
end
return 0`;
const CONFIRM = `${RECORD}
if redis.call('GET', KEYS[2]) == ARGV[1] and redis.call('SCARD', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
  return record('vacated')
end
return 0`;

/**
 * Cluster-wide occupancy in Redis: each script runs atomically, so exactly one node sees the topic
 * become occupied, and exactly one (the last to leave) confirms it vacated. Each node also indexes its
 * topics in a sorted set (`wsgate:occnode:<node>`, outside the topic's slot, so plain commands sent in the
 * same order as the script): score +inf while it holds the topic, the marker's expiry once it left, pruned
 * past that. When a node stops heartbeating, the survivors reap what its index names.
 */
export class RedisLedger implements OccupancyLedger {
  /** Serial of this node's event ids (`<node>-o<serial>`: the node id is unique per process, so the ids are per cluster). */
  private serial = 0;
  /**
   * Ids of this node's events that it decided or took back and is sending, or whose outbox entry it could
   * not remove yet: never handed out again by ownOutbox(). Bounded by the calls in flight and the send queue.
   */
  private readonly mine = new Set<string>();
  /** Delivered ids whose removal did not reach Redis: removed again at the next ownOutbox() (at most outbox.max kept). */
  private readonly undeleted = new Set<string>();

  constructor(
    private readonly redis: Redis,
    private readonly node: string,
    /** How long a vacate marker may outlive the delay before Redis drops it. */
    private readonly markerTtlMs: number,
    private readonly outbox: OutboxLimits,
    /** Told when a decided event could not be kept in the full outbox (it is still sent from memory). */
    private readonly onFull: () => void,
  ) {}

  /** The keys of a deciding script (the topic's three and this node's outbox) and its arguments after the node's id. */
  private decide(script: string, topic: string): Promise<unknown> {
    const id = `${this.node}-o${++this.serial}`;
    this.mine.add(id);
    return this.redis.eval(script, 4, ...this.keys(topic), outboxKey(this.node), this.node, id, topic, this.outbox.max, this.outbox.ttlMs).then(
      (r) => this.verdict(r, id),
      (e: unknown) => {
        // The outcome is unknown (the script may have run, its reply lost): if it kept the event, ownOutbox() finds it.
        this.mine.delete(id);
        throw e;
      },
    );
  }

  private verdict(answer: unknown, id: string): Verdict {
    if (!Array.isArray(answer)) {
      this.mine.delete(id);
      return false;
    }
    if (answer[1] !== 1) {
      this.mine.delete(id);
      this.onFull();
    }
    return { id, decidedMs: Number(answer[0]) };
  }

  private keys(topic: string): [string, string, string] {
    return [`wsgate:occ:{${topic}}`, `wsgate:vac:{${topic}}`, `wsgate:reaped:{${topic}}`];
  }

  private get index(): string {
    return nodeIndex(this.node);
  }

  // Both commands are issued together, so they reach Redis in call order even when the next call for the
  // topic comes before this one's reply; the index is added before and removed after the membership.
  async occupy(topic: string): Promise<Verdict> {
    const [, occupied] = await Promise.all([this.redis.zadd(this.index, '+inf', topic), this.decide(OCCUPY, topic)]);
    return occupied as Verdict;
  }

  async vacate(topic: string): Promise<boolean> {
    const now = Date.now();
    const [vacated] = await Promise.all([
      this.redis.eval(VACATE, 3, ...this.keys(topic), this.node, this.node, this.markerTtlMs),
      this.redis.zadd(this.index, now + this.markerTtlMs, topic),
      this.redis.zremrangebyscore(this.index, '-inf', now),
    ]);
    return vacated === 1;
  }

  async reap(node: string): Promise<string[]> {
    const now = Date.now();
    const topics = await this.redis.zrangebyscore(nodeIndex(node), now, '+inf');
    // A vacate this node may take over is indexed as its own first (as vacate() does), so that if this
    // node dies before confirming it, whoever reaps this node takes it over in turn. GT: a topic this node
    // holds itself keeps its +inf; an entry for a vacate not won names a marker that is not ours (no-op).
    const won = await Promise.all(
      topics.flatMap((t) => [this.redis.zadd(this.index, 'GT', now + this.markerTtlMs, t).then(() => 0), this.redis.eval(VACATE, 3, ...this.keys(t), node, this.node, this.markerTtlMs)]),
    );
    await this.redis.del(nodeIndex(node));
    return topics.filter((_, i) => won[2 * i + 1] === 1);
  }

  async reoccupy(topic: string): Promise<Verdict> {
    const [, occupied] = await Promise.all([this.redis.zadd(this.index, '+inf', topic), this.decide(REOCCUPY, topic)]);
    return occupied as Verdict;
  }

  confirmVacated(topic: string): Promise<Verdict> {
    return this.decide(CONFIRM, topic) as Promise<Verdict>;
  }

  async takeOver(node: string): Promise<TakenOver[]> {
    const flat = (await this.redis.eval(TAKEOVER, 2, outboxKey(node), outboxKey(this.node), this.outbox.ttlMs)) as string[];
    const taken: TakenOver[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) pushEntry(taken, flat[i] as string, flat[i + 1] as string);
    // Now in this node's hash and being sent by it: not handed out again by ownOutbox().
    for (const e of taken) this.mine.add(e.id);
    return taken;
  }

  /** Reads this node's own hash (TAKEOVER would move it into itself): the entries no call of this node is sending. */
  async ownOutbox(): Promise<TakenOver[]> {
    const key = outboxKey(this.node);
    const retry = [...this.undeleted];
    if (retry.length > 0) {
      await this.redis.hdel(key, ...retry);
      for (const id of retry) this.forget(id);
    }
    const all = await this.redis.hgetall(key);
    const own: TakenOver[] = [];
    for (const [id, value] of Object.entries(all)) if (!this.mine.has(id)) pushEntry(own, id, value);
    for (const e of own) this.mine.add(e.id);
    return own;
  }

  delivered(id: string): void {
    // Not reached (Redis away): removed again at the next ownOutbox(), and not sent again meanwhile.
    this.redis.hdel(outboxKey(this.node), id).then(
      () => this.forget(id),
      () => {
        if (this.undeleted.size < this.outbox.max) this.undeleted.add(id);
        else this.forget(id);
      },
    );
  }

  private forget(id: string): void {
    this.mine.delete(id);
    this.undeleted.delete(id);
  }

  async close(): Promise<void> {}
}

/** Adds an outbox entry ("change\ndecided ms\ntopic") to `to`; anything else is skipped. */
function pushEntry(to: TakenOver[], id: string, value: string): void {
  const [change, ms, ...topic] = value.split('\n');
  if (change === 'occupied' || change === 'vacated') to.push({ id, change, decidedMs: Number(ms), topic: topic.join('\n') });
}

const nodeIndex = (node: string): string => `wsgate:occnode:${node}`;
const outboxKey = (node: string): string => `wsgate:outbox:${node}`;

/** Bounds of a node's outbox: entries kept (beyond, an event is sent from memory only, counted), and the hash's TTL (renewed by every write). */
export interface OutboxLimits {
  readonly max: number;
  readonly ttlMs: number;
}
