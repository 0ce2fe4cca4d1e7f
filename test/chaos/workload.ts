import { SignJWT } from 'jose';
import { GatewayClient } from '../../src/client/gateway-client';
import { type GapEvent, type MessageEvent, WsgateClient } from '../../src/client/sdk';
import type { Reply } from '../../src/protocol/codec';
import { sleep } from '../helpers/brokers';
import { type Cluster, type Node, SECRET } from './cluster';
import type { Trail } from './trail';

export const FEEDS = ['feed.0', 'feed.1', 'feed.2'];
export const ROOMS = 2;

/** A seeded PRNG (mulberry32): the same seed gives the same schedule of choices. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}


/** How long the publisher waits for a publish to be acknowledged. */
export const PUBLISH_TIMEOUT_MS = 3000;

export const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;

/**
 * One acknowledged publish: `k` is its number on the topic (data `{k}`), sent at `sent` through node
 * `node` (slot) and acknowledged at `at`; the node handled it somewhere in between.
 */
export interface Published {
  readonly topic: string;
  readonly k: number;
  readonly sent: number;
  readonly at: number;
  readonly node: number;
}

/** Publishes `{k}` to the feeds in turn through a random live node's HTTP API, one at a time. */
export class Publisher {
  readonly acked: Published[] = [];
  attempts = 0;
  private readonly next = new Map<string, number>();
  private stopped = false;
  private done: Promise<void> = Promise.resolve();

  constructor(
    private readonly cluster: Cluster,
    private readonly r: () => number,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.done = (async () => {
      for (let i = 0; !this.stopped; i++) {
        await this.publish(FEEDS[i % FEEDS.length] as string, this.cluster.live());
        await sleep(this.intervalMs);
      }
    })();
  }

  /** Publishes once to `topic` through one of `nodes`; whether it was acknowledged. */
  async publish(topic: string, nodes: Node[]): Promise<boolean> {
    if (nodes.length === 0) return false;
    const k = (this.next.get(topic) ?? 0) + 1;
    this.next.set(topic, k);
    this.attempts++;
    const node = pick(this.r, nodes);
    const sent = Date.now();
    try {
      const res = await fetch(`${node.http}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic, data: { k } }), signal: AbortSignal.timeout(PUBLISH_TIMEOUT_MS) });
      await res.arrayBuffer();
      if (res.status !== 200) return false;
      this.acked.push({ topic, k, sent, at: Date.now(), node: node.slot });
      return true;
    } catch {
      return false;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

/** What one resumable subscriber saw of one topic: messages (`k`) and explicit gaps, in order. */
export type Seen = { readonly k: number; readonly s: number; readonly e: string; readonly at: number } | { readonly gap: GapEvent['reason']; readonly at: number; readonly from: string; readonly to: string };

/** An SDK client on one node subscribed to every feed: it reconnects (to that node) and resumes by itself. */
export class Subscriber {
  readonly seen = new Map<string, Seen[]>();
  readonly client: WsgateClient;
  /** Its node's slot. */
  readonly node: number;
  readonly openedAt = Date.now();
  closedAt: number | null = null;
  /** When its connection last opened (after a reconnect it subscribes again). */
  private lastOpen = 0;

  constructor(
    readonly id: number,
    node: Node,
    tokenOf: string,
  ) {
    this.node = node.slot;
    this.client = new WsgateClient({ url: node.url, token: () => tokenOf, backoff: { minDelayMs: 50, baseDelayMs: 100, maxDelayMs: 500 }, pingIntervalMs: 2000, pingTimeoutMs: 3000 });
    const add = (topic: string, s: Seen) => {
      let list = this.seen.get(topic);
      if (list === undefined) this.seen.set(topic, (list = []));
      list.push(s);
    };
    this.client.on('message', (m: MessageEvent) => add(m.topic, { k: (m.data as { k: number }).k, s: m.seq, e: m.epoch, at: Date.now() }));
    this.client.on('gap', (g: GapEvent) => add(g.topic, { gap: g.reason, at: Date.now(), from: `${g.expected.epoch}:${g.expected.seq}`, to: `${g.server.epoch}:${g.server.seq}` }));
    this.client.on('error', () => undefined);
    this.client.on('state', (e) => e.state === 'open' && (this.lastOpen = Date.now()));
    this.client.connect();
    for (const t of FEEDS) this.client.subscribe(t).catch(() => undefined);
  }

  /**
   * Connected and subscribed again since: every feed had a message or gap after the connection last
   * opened (the publisher feeds each one several times a second).
   */
  get live(): boolean {
    if (this.client.connectionState !== 'open') return false;
    return FEEDS.every((t) => {
      const list = this.seen.get(t) ?? [];
      return (list[list.length - 1]?.at ?? -1) >= this.lastOpen;
    });
  }

  close(): void {
    this.closedAt = Date.now();
    this.client.close();
  }
}

const tokens = new Map<string, string>();
export async function token(user: string): Promise<string> {
  let t = tokens.get(user);
  if (t === undefined) tokens.set(user, (t = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(user).sign(new TextEncoder().encode(SECRET))));
  return t;
}

/** One connection of a member holding `topics` on node `node` (slot) from `from` until `to`, ended by leaving or by losing it. */
export interface Hold {
  readonly topics: readonly string[];
  readonly node: number;
  readonly from: number;
  to: number | null;
  ended: 'left' | 'lost' | null;
}

/**
 * A member (user `m<i>`) on room.<r>, chat.<r> and its own solo.<i>, one connection at a time. When its
 * node dies it reconnects at once to a live node, as a real client behind a load balancer does.
 */
export class Member {
  conn: GatewayClient | null = null;
  /** Every connection it held, in order (which node an occupancy change happened on). */
  readonly holds: Hold[] = [];
  /** Topics it is subscribed to now (the truth presence is checked against). */
  topics: string[] = [];
  /** When it last joined or left (the truth changed). */
  since = 0;
  private generation = 0;

  constructor(
    readonly user: string,
    private readonly solo: string,
    private readonly cluster: Cluster,
    private readonly r: () => number,
  ) {}

  /** Connects to a random ready node and subscribes; retried until it holds or `stopped`. */
  async join(): Promise<void> {
    const gen = ++this.generation;
    const topics = [`room.${Math.floor(this.r() * ROOMS)}`, `chat.${Math.floor(this.r() * ROOMS)}`, this.solo];
    for (let attempt = 0; attempt < 100 && gen === this.generation; attempt++) {
      const node = pick(this.r, this.cluster.live());
      try {
        const c = await GatewayClient.connect(node.url, { token: await token(this.user) });
        for (const t of topics) await c.sub(t);
        if (gen !== this.generation) return void (await c.close());
        this.conn = c;
        this.topics = topics;
        this.since = Date.now();
        this.holds.push({ topics, node: node.slot, from: this.since, to: null, ended: null });
        this.cluster.trail.note(`${this.user} joined ${topics.join(',')} on node ${node.slot}`);
        c.ws.once('close', () => {
          if (this.conn !== c) return;
          this.cluster.trail.note(`${this.user} lost its connection to node ${node.slot}`);
          this.end('lost');
          this.conn = null;
          this.topics = [];
          void this.join(); // its node died or was cut: back at once elsewhere
        });
        return;
      } catch {
        await sleep(100);
      }
    }
  }

  async leave(): Promise<void> {
    this.generation++;
    const c = this.conn;
    if (c !== null) {
      this.cluster.trail.note(`${this.user} leaves`);
      this.end('left');
    }
    this.since = Date.now();
    this.conn = null;
    this.topics = [];
    if (c !== null) await c.close().catch(() => undefined);
  }

  private end(how: 'left' | 'lost'): void {
    const hold = this.holds[this.holds.length - 1];
    if (hold === undefined || hold.to !== null) return;
    hold.to = Date.now();
    hold.ended = how;
  }
}

type Notice = { op: string; t: string; p: { client: string; user: string } };

/** A watcher on one node subscribed to every room and chat: the members it derives from joins and leaves. */
export class Watcher {
  /** Per topic: member key (user for rooms, client for chats) → user, as the notices say now. */
  readonly members = new Map<string, Map<string, string>>();
  /** Joins of a key already joined, leaves of a key not joined (each notice must alternate). */
  readonly repeats: string[] = [];
  conn: GatewayClient | null = null;

  private constructor(private readonly trail: Trail) {}

  static async start(node: Node, trail: Trail): Promise<Watcher> {
    const w = new Watcher(trail);
    const topics = [];
    for (let r = 0; r < ROOMS; r++) topics.push(`room.${r}`, `chat.${r}`);
    const c = await GatewayClient.connect(node.url, { token: await token('watcher') });
    c.onNotice = (reply: Reply) => w.notice(reply as unknown as Notice);
    // One by one: each `ok` means live, so no join after it is missed.
    for (const t of topics) await c.sub(t);
    w.conn = c;
    return w;
  }

  private notice(n: Notice): void {
    if (n.op !== 'join' && n.op !== 'leave') return;
    const key = n.t.startsWith('room.') ? n.p.user : n.p.client;
    this.trail.note(`watcher: ${n.op} ${n.t} ${key} (${n.p.user})`);
    let m = this.members.get(n.t);
    if (m === undefined) this.members.set(n.t, (m = new Map()));
    if ((n.op === 'join') === m.has(key)) this.repeats.push(`${n.op} ${n.t} ${key} (${n.p.user})`);
    if (n.op === 'join') m.set(key, n.p.user);
    else m.delete(key);
  }

  /** The users the notices say are on `topic`, sorted (a user twice if two connections). */
  users(topic: string): string[] {
    return [...(this.members.get(topic)?.values() ?? [])].sort();
  }
}
