import type { ControlBus } from './control-bus';

/** Why a remote item appeared or went (who announces what depends on it; see JoinLeave). */
export type Cause =
  /** The holding node's own change, as it happened. */
  | 'delta'
  /** Repaired from a full resend: a change whose message was lost (or made while cut off). */
  | 'sync'
  /** Repaired from the first full resend of a node that had been declared gone (it is back). */
  | 'return'
  /** The holding node stopped heartbeating. */
  | 'gone';

/** Told of the items other nodes hold, of one kind. */
export interface HoldingsListener {
  added(node: string, key: string, value: unknown, cause: Cause): void;
  removed(node: string, key: string, value: unknown, cause: Cause): void;
}

/** Items of one node with an order-independent digest: a count and two 32-bit XOR lanes of item hashes. */
class ItemSet {
  readonly items = new Map<string, unknown>();
  private h1 = 0;
  private h2 = 0;

  set(id: string, value: unknown): boolean {
    const had = this.items.has(id);
    this.items.set(id, value);
    if (!had) this.flip(id);
    return !had;
  }

  delete(id: string): unknown {
    if (!this.items.has(id)) return undefined;
    const value = this.items.get(id);
    this.items.delete(id);
    this.flip(id);
    return value;
  }

  get digest(): string {
    return `${this.items.size}.${this.h1 >>> 0}.${this.h2 >>> 0}`;
  }

  private flip(id: string): void {
    // Two FNV-1a-style lanes with different seeds and multipliers (collisions only delay repair until an item changes).
    let a = 0x811c9dc5;
    let b = 0x9747b28c;
    for (let i = 0; i < id.length; i++) {
      const c = id.charCodeAt(i);
      a = Math.imul(a ^ c, 16777619);
      b = Math.imul(b ^ c, 2246822507);
    }
    this.h1 ^= a ^ (a >>> 15);
    this.h2 ^= b ^ (b >>> 13);
  }
}

/** A full resend being received in parts. */
interface Incoming {
  readonly id: number;
  readonly items: Map<string, unknown>;
  next: number;
}

// Control notices: a change [1, id, value] / [0, id]; a request for a full resend [id of the request];
// a part of a full resend [request id, part number, last?, [id, value, id, value, …]].
const DELTA = 'holdings';
const RESEND_REQUEST = 'holdings_want';
const RESEND = 'holdings_all';
/** Items per resend message: keeps each control message well under broker limits (NATS: 1 MB). */
const PART_ITEMS = 256;
/** Most parts accepted for one resend (so at most PART_ITEMS × MAX_PARTS items per node). */
const MAX_PARTS = 4096;

/**
 * State that each node holds and every other node must know (which users a node holds on a topic, which
 * connections of presenceBy-"client" topics it has), kept converging by anti-entropy. Each change is sent
 * at once (a delta); each heartbeat carries a digest of everything the node holds; a node whose view of
 * the sender has another digest asks it for a full resend and replaces its view with it, telling the
 * listeners the difference. So whatever was lost (a message dropped while the broker was down, a
 * partition, a restart) is repaired within one heartbeat period plus a round trip once the nodes hear
 * each other. A node that stops heartbeating has its view dropped (`gone`).
 *
 * Items are strings made of a one-letter kind and a key; bounded by what the nodes hold (live members).
 */
export class Holdings {
  private readonly own = new ItemSet();
  private readonly views = new Map<string, ItemSet>();
  private readonly incoming = new Map<string, Incoming>();
  private readonly listeners = new Map<string, HoldingsListener>();
  /** Nodes heard again after they were declared gone: their next full resend is a return. */
  private readonly returning = new Set<string>();
  /** Resend requests in flight, by node → when asked (at most one per node per heartbeat period). */
  private readonly asked = new Map<string, number>();
  private nextRequest = 0;
  /** Full resends asked of other nodes (repairs); read by the metrics. */
  resends = 0;

  private readonly heartbeatMs: number;

  constructor(private readonly bus: ControlBus) {
    this.heartbeatMs = bus.heartbeatMs;
    bus.setHeartbeatExtra(() => this.own.digest);
    bus.onHeartbeat((node, digest) => {
      if (typeof digest === 'string' && digest !== (this.views.get(node)?.digest ?? '0.0.0')) this.ask(node);
    });
    bus.onNodeSeen((node) => {
      if (bus.wasGone(node)) this.returning.add(node);
    });
    bus.onNodeGone((node) => this.drop(node));
    bus.listen(DELTA, (body, from) => this.delta(body, from));
    bus.listen(RESEND_REQUEST, (body, from) => typeof body === 'number' && this.resend(body, from));
    bus.listen(RESEND, (body, from) => this.part(body, from));
  }

  /** Receives the changes of items of `kind` (one letter) other nodes hold. */
  register(kind: string, listener: HoldingsListener): void {
    this.listeners.set(kind, listener);
  }

  /** This node now holds `key` of `kind` (with `value`, what other nodes are told). */
  add(kind: string, key: string, value: unknown): void {
    const id = kind + key;
    if (this.own.set(id, value)) this.bus.notify(DELTA, [1, id, value]);
  }

  /** This node no longer holds `key` of `kind`. */
  delete(kind: string, key: string): void {
    const id = kind + key;
    if (!this.own.items.has(id)) return;
    this.own.delete(id);
    this.bus.notify(DELTA, [0, id]);
  }

  /** Items of other nodes this node knows (for the metrics and tests). */
  get remoteItems(): number {
    let n = 0;
    for (const view of this.views.values()) n += view.items.size;
    return n;
  }

  private delta(body: unknown, from: string): void {
    if (!Array.isArray(body) || typeof body[1] !== 'string') return;
    const view = this.viewOf(from);
    const id = body[1];
    if (body[0] === 1) {
      if (view.set(id, body[2])) this.tell(from, id, body[2], 'delta', true);
    } else if (view.items.has(id)) this.tell(from, id, view.delete(id), 'delta', false);
  }

  private ask(node: string): void {
    const now = Date.now();
    const at = this.asked.get(node);
    if (at !== undefined && now - at < this.heartbeatMs) return;
    this.asked.set(node, now);
    this.resends++;
    this.bus.notify(RESEND_REQUEST, ++this.nextRequest, node);
    this.incoming.set(node, { id: this.nextRequest, items: new Map(), next: 0 });
  }

  private resend(request: number, to: string): void {
    const entries = [...this.own.items];
    const parts = Math.max(1, Math.ceil(entries.length / PART_ITEMS));
    for (let p = 0; p < parts; p++) {
      const flat: unknown[] = [];
      for (const [id, value] of entries.slice(p * PART_ITEMS, (p + 1) * PART_ITEMS)) flat.push(id, value);
      this.bus.notify(RESEND, [request, p, p === parts - 1, flat], to);
    }
  }

  private part(body: unknown, from: string): void {
    const inc = this.incoming.get(from);
    if (inc === undefined || !Array.isArray(body) || body[0] !== inc.id || body[1] !== inc.next || !Array.isArray(body[3])) return;
    const flat = body[3] as unknown[];
    for (let i = 0; i + 1 < flat.length; i += 2) if (typeof flat[i] === 'string') inc.items.set(flat[i] as string, flat[i + 1]);
    inc.next++;
    if (body[2] !== true && inc.next < MAX_PARTS) return;
    this.incoming.delete(from);
    this.asked.delete(from);
    this.replace(from, inc.items);
  }

  /** Makes the view of `node` equal to a full resend, telling the listeners the difference. */
  private replace(node: string, items: Map<string, unknown>): void {
    const cause: Cause = this.returning.delete(node) ? 'return' : 'sync';
    const view = this.viewOf(node);
    for (const id of [...view.items.keys()]) if (!items.has(id)) this.tell(node, id, view.delete(id), cause, false);
    for (const [id, value] of items) if (view.set(id, value)) this.tell(node, id, value, cause, true);
  }

  private drop(node: string): void {
    const view = this.views.get(node);
    this.views.delete(node);
    this.incoming.delete(node);
    this.asked.delete(node);
    if (view !== undefined) for (const [id, value] of view.items) this.tell(node, id, value, 'gone', false);
  }

  private viewOf(node: string): ItemSet {
    let view = this.views.get(node);
    if (view === undefined) this.views.set(node, (view = new ItemSet()));
    return view;
  }

  private tell(node: string, id: string, value: unknown, cause: Cause, added: boolean): void {
    const listener = this.listeners.get(id.charAt(0));
    if (listener === undefined) return;
    if (added) listener.added(node, id.slice(1), value, cause);
    else listener.removed(node, id.slice(1), value, cause);
  }
}
