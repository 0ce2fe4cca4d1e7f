import type { KV, KvEntry } from 'nats';
import type { OccupancyLedger } from './occupancy';

/** One topic's occupancy in the KV bucket: nodes holding subscribers, and the node confirming a vacate. */
interface TopicOccupancy {
  nodes: string[];
  vacating: string | null;
}

// Concurrent writers (other nodes) make a compare-and-set fail; it is read again and retried this often.
const MAX_CAS_ATTEMPTS = 20;

const EMPTY: TopicOccupancy = { nodes: [], vacating: null };
/** The key's next value; null deletes it (the topic is vacated: nothing to remember). */
type Change = (s: TopicOccupancy) => [TopicOccupancy | null, boolean];

// KV keys allow [-/_=.A-Za-z0-9]; topics also allow ':' and '@'.
const keyOf = (topic: string): string => Buffer.from(topic).toString('base64url');

/**
 * Cluster-wide occupancy in a JetStream KV bucket, with the same rules as the Redis scripts, made atomic
 * by compare-and-set on the key's revision. Calls for one topic from this node run one after the other.
 * A node that dies without closing leaves its membership behind (documented).
 */
export class NatsLedger implements OccupancyLedger {
  private readonly chains = new Map<string, Promise<unknown>>();

  constructor(
    private readonly kv: KV,
    private readonly node: string,
    private readonly close_: () => Promise<void>,
  ) {}

  occupy(topic: string): Promise<boolean> {
    return this.change(topic, (s) => {
      if (s.nodes.includes(this.node)) return [s, false];
      const nodes = [...s.nodes, this.node];
      if (s.nodes.length > 0) return [{ ...s, nodes }, false];
      // Taken again while a vacate waited: neither event.
      return [{ nodes, vacating: null }, s.vacating === null];
    });
  }

  vacate(topic: string): Promise<boolean> {
    return this.change(topic, (s) => {
      const nodes = s.nodes.filter((n) => n !== this.node);
      return nodes.length === 0 ? [{ nodes, vacating: this.node }, true] : [{ ...s, nodes }, false];
    });
  }

  confirmVacated(topic: string): Promise<boolean> {
    return this.change(topic, (s) => (s.vacating === this.node && s.nodes.length === 0 ? [null, true] : [s, false]));
  }

  /** Applies `f` atomically (read, compute, compare-and-set, retry), after this node's earlier calls for `topic`. */
  private change(topic: string, f: Change): Promise<boolean> {
    const run = (this.chains.get(topic) ?? Promise.resolve()).then(() => this.cas(keyOf(topic), f));
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
      const [next, result] = f(live ? (entry as KvEntry).json<TopicOccupancy>() : EMPTY);
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
