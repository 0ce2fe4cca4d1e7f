import { packr, unpackr } from '../protocol/msgpack';

/**
 * How a broker carries control messages between nodes (not topic traffic): to every other node, or to
 * one. Brokers without other nodes (memory) have none.
 */
export interface ControlTransport {
  readonly nodeId: string;
  /** Sends to every other node (`to` null) or to one node. Best effort: lost while the broker is down. */
  send(to: string | null, message: Buffer): void;
  /** Sets the function called with each control message for this node (its own broadcasts may come back). */
  onControl(receive: (message: Buffer) => void): void;
  /**
   * Whether sends leave and this node's control subscriptions are confirmed at the broker. Absent: always
   * (a transport that cannot tell).
   */
  isUp?(): boolean;
  /** Sets the function called each time the transport comes up (first connection and every reconnect). */
  onUp?(listener: () => void): void;
}

/** Answers one kind of query on this node. Its value is msgpack-encoded for the asking node. */
export type QueryHandler = (body: unknown) => unknown;

export interface ControlBusOptions {
  /** How often a node says it is alive. */
  readonly heartbeatMs: number;
  /** A node not heard from for this long is gone (its answers and presence entries with it). */
  readonly nodeTtlMs: number;
  /** Longest a query waits for the nodes it knows. */
  readonly queryTimeoutMs: number;
}

/** One query's replies being collected. */
interface Gathering {
  readonly waiting: Set<string>;
  readonly replies: unknown[];
  readonly done: (replies: unknown[]) => void;
  readonly timer: NodeJS.Timeout;
}

// Wire: msgpack arrays. Heartbeat [0, from, extra, returned?]; query [1, from, id, kind, body]; reply [2, from, id,
// value]; one-way notice [3, from, kind, body]. A heartbeat's `returned` lists [node, episode] pairs: nodes the
// sender had declared gone, reaped, and heard from again (an episode is the sender's time of the declaration).
const HEARTBEAT = 0;
const QUERY = 1;
const REPLY = 2;
const NOTICE = 3;
/** How many node TTLs a gone node is remembered (so that its return can be told from a first start). */
const GONE_MEMORY_TTLS = 360;
/** How many node TTLs a returned node stays listed in heartbeats (repeats cover a lost heartbeat). */
const RETURNED_TTLS = 2;

/** A node declared gone: when, and when the listeners finished removing it (its memberships reaped). */
interface Gone {
  readonly at: number;
  readonly removed: Promise<unknown>;
}

/**
 * Cluster-wide questions ("which topics", "who is present", "disconnect user u1"): a query goes to every
 * node, each answers from what it holds locally, and the asking node combines the answers. Nodes know
 * each other from heartbeats, so a query finishes as soon as every live node answered, and a node that
 * died without a goodbye drops out after `nodeTtlMs` (until then a query waits `queryTimeoutMs` for it).
 */
export class ControlBus {
  private readonly handlers = new Map<string, QueryHandler>();
  private readonly listeners = new Map<string, (body: unknown, from: string) => void>();
  /** Other nodes by id → when last heard from. */
  private readonly peers = new Map<string, number>();
  /** When tick last ran: a longer gap than two heartbeat periods means our own event loop stalled. */
  private lastTick = Date.now();
  private readonly gatherings = new Map<number, Gathering>();
  private readonly goneListeners: ((node: string) => unknown)[] = [];
  private readonly seenListeners: ((node: string) => void)[] = [];
  private readonly heartbeatListeners: ((node: string, extra: unknown) => void)[] = [];
  private readonly upListeners: (() => void)[] = [];
  /** What each heartbeat carries besides the sender (the holdings digest, see Holdings). */
  private heartbeatExtra: () => unknown = () => null;
  /** Nodes declared gone, by id (bounded: pruned after GONE_MEMORY_TTLS node TTLs). */
  private readonly gone = new Map<string, Gone>();
  /** Nodes heard again after they were declared gone and removed, by id → [episode, listed until]. */
  private readonly returned = new Map<string, [number, number]>();
  /** Per peer: the last episode in which it told this node that it had been declared gone (handled once). */
  private readonly toldGone = new Map<string, number>();
  private wasUp = false;
  private nextId = 0;
  private readonly timer: NodeJS.Timeout | null;

  constructor(
    private readonly transport: ControlTransport | null,
    private readonly options: ControlBusOptions,
  ) {
    if (transport === null) {
      this.timer = null;
      return;
    }
    transport.onControl((m) => this.receive(m));
    this.timer = setInterval(() => this.tick(), options.heartbeatMs).unref();
    // The first heartbeat leaves once the transport is up (sent earlier it would go nowhere), and again
    // after every reconnect, so the others hear of this node (and its digest) at once.
    if (transport.onUp === undefined) this.heartbeat();
    else transport.onUp(() => this.cameUp());
  }

  /**
   * Whether this node's control messages leave and its control subscriptions are in effect (readiness).
   * Always true without other nodes.
   */
  get up(): boolean {
    return this.transport?.isUp?.() ?? true;
  }

  get heartbeatMs(): number {
    return this.options.heartbeatMs;
  }

  /** Whether `node` was declared gone (and not heard from since). */
  wasGone(node: string): boolean {
    return this.gone.has(node);
  }

  get nodeId(): string {
    return this.transport?.nodeId ?? 'local';
  }

  /** Nodes currently known to be alive, this one included. */
  get nodes(): number {
    return this.peers.size + 1;
  }

  /**
   * Whether this node has the lowest id among the live nodes: one node, agreed on without messages,
   * reports what every node sees alike (a dead node's members leaving).
   */
  get leads(): boolean {
    for (const peer of this.peers.keys()) if (peer < this.nodeId) return false;
    return true;
  }

  handle(kind: string, handler: QueryHandler): void {
    this.handlers.set(kind, handler);
  }

  /** Receives the notices of one kind other nodes send with notify(). */
  listen(kind: string, listener: (body: unknown, from: string) => void): void {
    this.listeners.set(kind, listener);
  }

  /**
   * Tells every other node (`to` null) or one, expecting no answer. Sent whether or not other nodes are
   * known yet (a node that started a moment ago may not have been heard from). Best effort while the
   * transport is down: state shared through Holdings is repaired by its digests.
   */
  notify(kind: string, body: unknown, to: string | null = null): void {
    const transport = this.transport;
    if (transport !== null) transport.send(to, this.encode([NOTICE, transport.nodeId, kind, body]));
  }

  /** Calls `listener` with each heartbeat's extra (see setHeartbeatExtra) and its sender. */
  onHeartbeat(listener: (node: string, extra: unknown) => void): void {
    this.heartbeatListeners.push(listener);
  }

  /** Sets what each heartbeat carries (computed per heartbeat). */
  setHeartbeatExtra(extra: () => unknown): void {
    this.heartbeatExtra = extra;
  }

  /**
   * Calls `listener` when this node must assert its state again: each time the transport comes up again
   * after it was down (not on the first time), and once per episode in which a peer declared this node
   * gone while its own transport stayed up (its heartbeats were lost or late: a stall, a slow link); the
   * peer says so once it has finished removing this node, so what the listener asserts is not undone.
   */
  onRejoin(listener: () => void): void {
    this.upListeners.push(listener);
  }

  /** Calls `listener` with the id of a node heard from for the first time (or again after it was gone). */
  onNodeSeen(listener: (node: string) => void): void {
    this.seenListeners.push(listener);
  }

  /**
   * Calls `listener` with the id of a node that stopped sending heartbeats. A listener that removes the
   * node's state elsewhere (a shared ledger) returns a promise of that: the node, if it comes back, is told
   * it was gone only after it settles.
   */
  onNodeGone(listener: (node: string) => unknown): void {
    this.goneListeners.push(listener);
  }

  /** Asks every live node (this one first); resolves with each answer, however many came in time. */
  gather(kind: string, body: unknown): Promise<unknown[]> {
    const local = this.answer(kind, body);
    const transport = this.transport;
    if (transport === null || this.peers.size === 0) return Promise.resolve([local]);
    const id = ++this.nextId;
    return new Promise((resolve) => {
      const g: Gathering = {
        waiting: new Set(this.peers.keys()),
        replies: [local],
        done: resolve,
        timer: setTimeout(() => this.finish(id), this.options.queryTimeoutMs),
      };
      this.gatherings.set(id, g);
      transport.send(null, this.encode([QUERY, transport.nodeId, id, kind, body]));
    });
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    for (const id of [...this.gatherings.keys()]) this.finish(id);
  }

  private answer(kind: string, body: unknown): unknown {
    const handler = this.handlers.get(kind);
    return handler === undefined ? null : handler(body);
  }

  private receive(message: Buffer): void {
    let m: unknown;
    try {
      m = unpackr.unpack(message);
    } catch {
      return; // not ours: never let a stray message break the node
    }
    if (!Array.isArray(m) || typeof m[1] !== 'string') return;
    const from = m[1];
    if (from === this.nodeId) return;
    const known = this.peers.has(from);
    this.peers.set(from, Date.now());
    // A node just started: answer at once so it need not wait a heartbeat period to know us.
    if (!known && m[0] === HEARTBEAT) this.heartbeat(from);
    if (!known) for (const listener of this.seenListeners) listener(from);
    const gone = this.gone.get(from);
    this.gone.delete(from);
    if (!known && gone !== undefined) this.tellReturned(from, gone);
    if (m[0] === HEARTBEAT) {
      this.heardReturned(from, m[3]);
      for (const listener of this.heartbeatListeners) listener(from, m[2]);
    } else if (m[0] === QUERY && typeof m[2] === 'number' && typeof m[3] === 'string') {
      const transport = this.transport as ControlTransport;
      transport.send(from, this.encode([REPLY, transport.nodeId, m[2], this.answer(m[3], m[4])]));
    } else if (m[0] === NOTICE && typeof m[2] === 'string') {
      this.listeners.get(m[2])?.(m[3], from);
    } else if (m[0] === REPLY && typeof m[2] === 'number') {
      const g = this.gatherings.get(m[2]);
      if (g === undefined) return;
      g.replies.push(m[3]);
      g.waiting.delete(from);
      if (g.waiting.size === 0) this.finish(m[2]);
    }
  }

  private finish(id: number): void {
    const g = this.gatherings.get(id);
    if (g === undefined) return;
    this.gatherings.delete(id);
    clearTimeout(g.timer);
    g.done(g.replies);
  }

  /**
   * `node` is back after this node declared it gone: once its removal has settled, it is listed in the
   * heartbeats for RETURNED_TTLS node TTLs and told at once by a heartbeat of its own, so that it asserts
   * its state again (it may never have noticed: its transport stayed up).
   */
  private tellReturned(node: string, gone: Gone): void {
    void gone.removed.then(() => {
      if (this.gone.has(node) || !this.peers.has(node)) return; // gone again meanwhile: the next return tells
      this.returned.set(node, [gone.at, Date.now() + RETURNED_TTLS * this.options.nodeTtlMs]);
      this.heartbeat(node);
    });
  }

  /** A peer's heartbeat lists the nodes it had declared gone and heard again: if this one, rejoin once per episode. */
  private heardReturned(from: string, returned: unknown): void {
    if (!Array.isArray(returned)) return;
    for (const entry of returned) {
      if (!Array.isArray(entry) || entry[0] !== this.nodeId || typeof entry[1] !== 'number') continue;
      if (this.toldGone.get(from) === entry[1]) return;
      this.toldGone.set(from, entry[1]);
      for (const listener of this.upListeners) listener();
    }
  }

  private cameUp(): void {
    // While this node was cut off it heard nobody: that says nothing about the others, so they get a
    // full TTL from now to be heard again before they count as gone.
    const now = Date.now();
    for (const node of this.peers.keys()) this.peers.set(node, now);
    this.heartbeat();
    if (this.wasUp) for (const listener of this.upListeners) listener();
    this.wasUp = true;
  }

  private tick(): void {
    const now = Date.now();
    // Our own event loop was blocked (load, a GC, a fresh node compiling): the peers' heartbeats of that
    // time wait in the socket, to be read after this timer. Declaring them gone now would reap live nodes
    // (the chaos run saw it), so each gets a fresh TTL instead; a really dead one goes one TTL later.
    const stalled = now - this.lastTick > 2 * this.options.heartbeatMs;
    this.lastTick = now;
    this.heartbeat();
    // A node whose own transport is down cannot hear anyone: it declares nobody gone (it keeps serving
    // its local clients with what it knew; see cameUp).
    if (!this.up) return;
    if (stalled) {
      for (const node of this.peers.keys()) this.peers.set(node, now);
      return;
    }
    const cutoff = now - this.options.nodeTtlMs;
    for (const [node, g] of this.gone) if (g.at < now - GONE_MEMORY_TTLS * this.options.nodeTtlMs) this.gone.delete(node);
    for (const [node, [, until]] of this.returned) if (until < now) this.returned.delete(node);
    for (const [node, seen] of this.peers) {
      if (seen >= cutoff) continue;
      this.peers.delete(node);
      this.returned.delete(node);
      this.toldGone.delete(node);
      for (const [id, g] of this.gatherings) if (g.waiting.delete(node) && g.waiting.size === 0) this.finish(id);
      const removed = Promise.allSettled(this.goneListeners.map((listener) => listener(node)));
      this.gone.set(node, { at: now, removed });
    }
  }

  private heartbeat(to: string | null = null): void {
    const transport = this.transport as ControlTransport;
    const message = [HEARTBEAT, transport.nodeId, this.heartbeatExtra()];
    if (this.returned.size > 0) message.push([...this.returned].map(([node, [episode]]) => [node, episode]));
    transport.send(to, this.encode(message));
  }

  /** A copy: packr's output is a view of a buffer the next encode reuses, and sends are asynchronous. */
  private encode(message: unknown[]): Buffer {
    return Buffer.from(packr.pack(message));
  }
}
