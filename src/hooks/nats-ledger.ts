import type { KV, KvEntry } from 'nats';
import type { OccupancyLedger } from './occupancy';

/** One topic's occupancy in the KV bucket: nodes holding subscribers, and the node confirming a vacate. */
interface TopicOccupancy {
  nodes: string[];
  vacating: string | null;
  /** Nodes reaped while holding the topic (so that their return can be told from a lost membership). */
  reaped?: string[];
}

/** Most reaped nodes remembered per topic (oldest forgotten first). */
const MAX_REAPED = 16;

// Concurrent writers (other nodes) make a compare-and-set fail; it is read again and retried this often.
const MAX_CAS_ATTEMPTS = 20;

const EMPTY: TopicOccupancy = { nodes: [], vacating: null };
/** The key's next value; null deletes it (the topic is vacated: nothing to remember). */
type Change = (s: TopicOccupancy) => [TopicOccupancy | null, boolean];

// KV keys allow [-/_=.A-Za-z0-9]; topics also allow ':' and '@'.
const keyOf = (topic: string): string => Buffer.from(topic).toString('base64url');
const topicOf = (key: string): string => Buffer.from(key, 'base64url').toString();

/**
 * Cluster-wide occupancy in a JetStream KV bucket, with the same rules as the Redis scripts, made atomic
 * by compare-and-set on the key's revision. Calls for one topic from this node run one after the other.
 * When a node stops heartbeating, the survivors walk the bucket's keys (one per occupied topic) and remove
 * it by the same compare-and-set, so exactly one of them takes over each vacate it leaves.
 */
export class NatsLedger implements OccupancyLedger {
  private readonly chains = new Map<string, Promise<unknown>>();

  constructor(
    private readonly kv: KV,
    private readonly node: string,
    private readonly close_: () => Promise<void>,
    /** Whether the connection is up: nats.js would hold a request made while it reconnects and send it later, an outcome no caller could know. */
    private readonly connected: () => boolean = () => true,
  ) {}

  occupy(topic: string): Promise<boolean> {
    return this.change(topic, (s) => {
      if (s.nodes.includes(this.node)) return [s, false];
      const nodes = [...s.nodes, this.node];
      if (s.nodes.length > 0) return [{ ...s, nodes }, false];
      // Taken again while a vacate waited: neither event.
      return [{ nodes, vacating: null, reaped: s.reaped }, s.vacating === null];
    });
  }

  vacate(topic: string): Promise<boolean> {
    return this.change(topic, this.leave(this.node));
  }

  confirmVacated(topic: string): Promise<boolean> {
    return this.change(topic, (s) => {
      if (s.vacating !== this.node || s.nodes.length > 0) return [s, false];
      // Kept while it remembers reaped nodes (see reoccupy); else nothing to remember.
      return [(s.reaped?.length ?? 0) > 0 ? { nodes: [], vacating: null, reaped: s.reaped } : null, true];
    });
  }

  /** The same rules as the Redis ledger's REOCCUPY script. */
  reoccupy(topic: string): Promise<boolean> {
    return this.change(topic, (s) => {
      if (s.nodes.includes(this.node)) return [s, false];
      const reaped = s.reaped?.includes(this.node) === true;
      const next: TopicOccupancy = { nodes: [...s.nodes, this.node], vacating: s.nodes.length === 0 && reaped ? null : s.vacating, reaped: s.reaped?.filter((n) => n !== this.node) };
      return [next, reaped && s.nodes.length === 0 && s.vacating === null];
    });
  }

  async reap(node: string): Promise<string[]> {
    // Listed in full first: changing keys while the lister ran ended it after the first key (seen in tests).
    const keys: string[] = [];
    for await (const key of await this.kv.keys()) keys.push(key);
    const taken: string[] = [];
    for (const key of keys) {
      const topic = topicOf(key);
      if (await this.change(topic, this.leave(node))) taken.push(topic);
    }
    return taken;
  }

  /**
   * `node` leaves (itself, or reaped by this node). The one change that removes the last member makes this
   * node the confirmer; a node no longer listed (already reaped) changes nothing. A reaper also takes over
   * a vacate the gone node was still to confirm.
   */
  private leave(node: string): Change {
    return (s) => {
      if (!s.nodes.includes(node)) {
        const orphaned = node !== this.node && s.nodes.length === 0 && s.vacating === node;
        return orphaned ? [{ nodes: [], vacating: this.node, reaped: s.reaped }, true] : [s, false];
      }
      const nodes = s.nodes.filter((n) => n !== node);
      const reaped = node === this.node ? s.reaped : [...(s.reaped ?? []), node].slice(-MAX_REAPED);
      return nodes.length === 0 ? [{ nodes, vacating: this.node, reaped }, true] : [{ ...s, nodes, reaped }, false];
    };
  }

  /** Applies `f` atomically (read, compute, compare-and-set, retry), after this node's earlier calls for `topic`. */
  private change(topic: string, f: Change): Promise<boolean> {
    const run = (this.chains.get(topic) ?? Promise.resolve()).then(() => {
      if (!this.connected()) throw new Error('occupancy ledger: NATS connection down');
      return this.cas(keyOf(topic), f);
    });
    const tail = run.catch(() => undefined);
    this.chains.set(topic, tail);
    void tail.then(() => {
      if (this.chains.get(topic) === tail) this.chains.delete(topic);
    });
    return run;
  }

  private async cas(key: string, f: Change): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const entry = await this.kv.get(key);
      const live = entry !== null && entry.operation === 'PUT';
      const state = live ? (entry as KvEntry).json<TopicOccupancy>() : EMPTY;
      const [next, result] = f(state);
      if (next === state) return result; // unchanged: nothing to write
      try {
        if (next === null) await this.kv.delete(key, { previousSeq: (entry as KvEntry).revision });
        else if (live) await this.kv.update(key, JSON.stringify(next), (entry as KvEntry).revision);
        else await this.kv.create(key, JSON.stringify(next));
        return result;
      } catch (e) {
        // Another node wrote first ("wrong last sequence"): read again. Anything else is an outage.
        if (!/wrong last sequence|key exists/i.test((e as Error).message)) throw e;
      }
    }
    throw new Error(`occupancy of ${key} contended ${MAX_CAS_ATTEMPTS} times`);
  }

  close(): Promise<void> {
    return this.close_();
  }
}
