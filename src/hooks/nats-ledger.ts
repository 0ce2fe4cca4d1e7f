import type { KV, KvEntry } from 'nats';
import type { OccupancyLedger, TakenOver, Verdict } from './occupancy';

/** An occupancy event decided and not yet delivered: its id, the node that sends it, the change, when decided. */
interface OutboxEntry {
  id: string;
  node: string;
  c: 'occupied' | 'vacated';
  d: number;
}

/** One topic's occupancy in the KV bucket: nodes holding subscribers, and the node confirming a vacate. */
interface TopicOccupancy {
  nodes: string[];
  vacating: string | null;
  /** Nodes reaped while holding the topic (so that their return can be told from a lost membership). */
  reaped?: string[];
  /** The topic's outbox: events decided, written with the decision, removed once delivered (see NatsLedger). */
  out?: OutboxEntry[];
}

/** Bounds of a topic's outbox: entries kept (beyond, an event is sent from memory only, counted), and their age. */
export interface NatsOutboxLimits {
  readonly max: number;
  readonly ttlMs: number;
}

/** Most reaped nodes remembered per topic (oldest forgotten first). */
const MAX_REAPED = 16;

// Concurrent writers (other nodes) make a compare-and-set fail; it is read again and retried this often.
const MAX_CAS_ATTEMPTS = 20;
/** Most delivered ids whose removal did not reach NATS kept to be removed again (beyond, they may be sent again). */
const MAX_UNDELETED = 1024;

const EMPTY: TopicOccupancy = { nodes: [], vacating: null };
/** The key's next value; null deletes it (the topic is vacated: nothing to remember). */
type Change = (s: TopicOccupancy) => [TopicOccupancy | null, boolean];
/** The outbox's next entries, given the change's result (the same array: unchanged). */
type OutboxEdit = (out: OutboxEntry[], result: boolean) => OutboxEntry[];
const KEEP: OutboxEdit = (out) => out;
const NO_ENTRIES: OutboxEntry[] = [];

// KV keys allow [-/_=.A-Za-z0-9]; topics also allow ':' and '@'.
const keyOf = (topic: string): string => Buffer.from(topic).toString('base64url');
const topicOf = (key: string): string => Buffer.from(key, 'base64url').toString();

/**
 * Cluster-wide occupancy in a JetStream KV bucket, with the same rules as the Redis scripts, made atomic
 * by compare-and-set on the key's revision. Calls for one topic from this node run one after the other.
 * When a node stops heartbeating, the survivors walk the bucket's keys (one per occupied topic) and remove
 * it by the same compare-and-set, so exactly one of them takes over each vacate it leaves.
 *
 * A decision to announce is written in the topic's key with the decision (the same compare-and-set), as
 * an outbox entry naming this node; the entry is removed once the webhook left (acknowledged or given
 * up), and whoever reaps a dead node re-labels its entries as its own (compare-and-set: each to one node)
 * and sends them with the same id. A key is kept while its outbox is not empty.
 */
export class NatsLedger implements OccupancyLedger {
  private readonly chains = new Map<string, Promise<unknown>>();
  /** Serial of this node's event ids (`<node>-o<serial>`). */
  private serial = 0;
  /**
   * Ids of this node's entries that it decided or took over and is sending, or could not remove yet: never
   * handed out again by ownOutbox(). Bounded by the calls in flight and the send queue.
   */
  private readonly mine = new Set<string>();
  /** Delivered ids (and their topics) whose removal did not reach NATS: removed again at the next ownOutbox(). */
  private readonly undeleted = new Map<string, string>();

  constructor(
    private readonly kv: KV,
    private readonly node: string,
    private readonly close_: () => Promise<void>,
    /** Whether the connection is up: nats.js would hold a request made while it reconnects and send it later, an outcome no caller could know. */
    private readonly connected: () => boolean = () => true,
    private readonly outbox: NatsOutboxLimits = { max: 32, ttlMs: 3_600_000 },
    /** Told when a decided event could not be kept in the topic's full outbox (it is still sent from memory). */
    private readonly onFull: () => void = () => undefined,
  ) {}

  /** Applies a deciding change; when it says announce, the event is written in the topic's outbox with it. */
  private async decide(topic: string, change: 'occupied' | 'vacated', f: Change): Promise<Verdict> {
    let entry: OutboxEntry | null = null;
    const record: OutboxEdit = (out, yes) => {
      // A previous attempt's entry was not written (another node wrote first).
      if (entry !== null) this.mine.delete(entry.id);
      entry = null;
      if (!yes) return out;
      entry = { id: `${this.node}-o${++this.serial}`, node: this.node, c: change, d: Date.now() };
      if (out.length >= this.outbox.max) {
        this.onFull();
        return out;
      }
      this.mine.add(entry.id);
      return [...out, entry];
    };
    let decided: boolean;
    try {
      decided = await this.change(topic, f, record);
    } catch (err) {
      // The outcome is unknown (the write may have persisted, its reply lost): if it did, ownOutbox() finds it.
      const lost = entry as OutboxEntry | null;
      if (lost !== null) this.mine.delete(lost.id);
      throw err;
    }
    if (!decided) return false;
    const e = entry as OutboxEntry | null;
    return e === null ? true : { id: e.id, decidedMs: e.d };
  }

  occupy(topic: string): Promise<Verdict> {
    return this.decide(topic, 'occupied', (s) => {
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

  confirmVacated(topic: string): Promise<Verdict> {
    return this.decide(topic, 'vacated', (s) => {
      if (s.vacating !== this.node || s.nodes.length > 0) return [s, false];
      // Kept while it remembers reaped nodes (see reoccupy); else nothing to remember.
      return [(s.reaped?.length ?? 0) > 0 ? { nodes: [], vacating: null, reaped: s.reaped } : null, true];
    });
  }

  /** The same rules as the Redis ledger's REOCCUPY script. */
  reoccupy(topic: string): Promise<Verdict> {
    return this.decide(topic, 'occupied', (s) => {
      if (s.nodes.includes(this.node)) return [s, false];
      const reaped = s.reaped?.includes(this.node) === true;
      const next: TopicOccupancy = { nodes: [...s.nodes, this.node], vacating: s.nodes.length === 0 && reaped ? null : s.vacating, reaped: s.reaped?.filter((n) => n !== this.node) };
      return [next, reaped && s.nodes.length === 0 && s.vacating === null];
    });
  }

  async reap(node: string): Promise<string[]> {
    const keys = await this.keys();
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

  async takeOver(node: string): Promise<TakenOver[]> {
    const taken: TakenOver[] = [];
    for (const key of await this.keys()) {
      const topic = topicOf(key);
      let mine: OutboxEntry[] = [];
      await this.change(topic, (s) => [s, false], (out) => {
        mine = out.filter((e) => e.node === node);
        // Labelled as this node's and being sent by it: not handed out again by ownOutbox().
        for (const e of mine) this.mine.add(e.id);
        return mine.length === 0 ? out : out.map((e) => (e.node === node ? { ...e, node: this.node } : e));
      }).catch((err: unknown) => {
        for (const e of mine) this.mine.delete(e.id);
        throw err;
      });
      for (const e of mine) taken.push({ id: e.id, change: e.c, topic, decidedMs: e.d });
    }
    return taken;
  }

  /** Reads every topic's key: the entries labelled with this node that no call of this node is sending. */
  async ownOutbox(): Promise<TakenOver[]> {
    if (!this.connected()) throw new Error('occupancy ledger: NATS connection down');
    for (const [id, topic] of [...this.undeleted]) {
      await this.remove(id, topic);
      this.forget(id);
    }
    const own: TakenOver[] = [];
    for (const key of await this.keys()) {
      const entry = await this.kv.get(key);
      if (entry === null || entry.operation !== 'PUT') continue;
      for (const e of entry.json<TopicOccupancy>().out ?? NO_ENTRIES) {
        if (e.node === this.node && !this.mine.has(e.id)) own.push({ id: e.id, change: e.c, topic: topicOf(key), decidedMs: e.d });
      }
    }
    for (const e of own) this.mine.add(e.id);
    return own;
  }

  delivered(id: string, topic: string): void {
    // Not reached (NATS away): removed again at the next ownOutbox(), and not sent again meanwhile.
    this.remove(id, topic).then(
      () => this.forget(id),
      () => {
        if (this.undeleted.size < MAX_UNDELETED) this.undeleted.set(id, topic);
        else this.forget(id);
      },
    );
  }

  private remove(id: string, topic: string): Promise<boolean> {
    return this.change(topic, (s) => [s, false], (out) => (out.some((e) => e.id === id) ? out.filter((e) => e.id !== id) : out));
  }

  private forget(id: string): void {
    this.mine.delete(id);
    this.undeleted.delete(id);
  }

  /** The bucket's keys, listed in full first: changing keys while the lister ran ended it after the first key (seen in tests). */
  private async keys(): Promise<string[]> {
    const keys: string[] = [];
    for await (const key of await this.kv.keys()) keys.push(key);
    return keys;
  }

  /** Applies `f` atomically (read, compute, compare-and-set, retry), after this node's earlier calls for `topic`. */
  private change(topic: string, f: Change, edit: OutboxEdit = KEEP): Promise<boolean> {
    const run = (this.chains.get(topic) ?? Promise.resolve()).then(() => {
      if (!this.connected()) throw new Error('occupancy ledger: NATS connection down');
      return this.cas(keyOf(topic), f, edit);
    });
    const tail = run.catch(() => undefined);
    this.chains.set(topic, tail);
    void tail.then(() => {
      if (this.chains.get(topic) === tail) this.chains.delete(topic);
    });
    return run;
  }

  private async cas(key: string, f: Change, edit: OutboxEdit): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const entry = await this.kv.get(key);
      const live = entry !== null && entry.operation === 'PUT';
      const state = live ? (entry as KvEntry).json<TopicOccupancy>() : EMPTY;
      const [computed, result] = f(state);
      const next = this.withOutbox(state, computed, edit, result);
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

  /** The change's next value with the topic's outbox carried over and edited (entries past their age dropped). */
  private withOutbox(state: TopicOccupancy, computed: TopicOccupancy | null, edit: OutboxEdit, result: boolean): TopicOccupancy | null {
    const had = state.out ?? NO_ENTRIES;
    const oldest = Date.now() - this.outbox.ttlMs;
    const fresh = had.some((e) => e.d < oldest) ? had.filter((e) => e.d >= oldest) : had;
    const out = edit(fresh, result);
    if (computed === state && out === had) return state;
    if (out.length === 0) {
      if (computed === null) return null;
      const { out: _dropped, ...rest } = computed;
      return rest.nodes.length === 0 && rest.vacating === null && (rest.reaped?.length ?? 0) === 0 ? null : rest;
    }
    return { ...(computed ?? { nodes: [], vacating: null }), out };
  }

  close(): Promise<void> {
    return this.close_();
  }
}
