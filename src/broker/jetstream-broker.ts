import type { Msg, Subscription } from 'nats';
import type { ControlTransport } from '../cluster/control-bus';
import type { Config } from '../config/schema';
import type { Logger } from '../log';
import type { GatewayMetrics } from '../metrics/gateway-metrics';
import type { PublishSource, Stats } from '../metrics/stats';
import type { HistoryMessage } from '../protocol/codec';
import { ErrorCode, GatewayError } from '../protocol/codes';
import type { StreamPosition } from '../protocol/commands';
import { unpackr } from '../protocol/msgpack';
import { Payload } from '../protocol/payload';
import { unrecoverable } from '../pubsub/history-read';
import type { Hub } from '../pubsub/hub';
import { newEpoch } from '../pubsub/topic-state';
import type { Broker, HistoryPage, PublishOutcome, TopicSnapshot } from './broker';
import { Envelope, EnvelopeError, MsgpackCursor } from './envelope';
import { type Position, type StoredEnvelope, encodeMarker, envelopesOf, positionOf, runAfter } from './jetstream-batch';
import { PublishLanes, UNAVAILABLE } from './jetstream-lanes';
import { Conflict, type StoredMessage, TopicStore, liveSubject } from './jetstream-store';
import { InterestTable, type InterestTarget } from './interest';
import { Backoff, raceTimeout } from './lifecycle';
import { NatsLink } from './nats-link';
import { EnvelopeReceiver, absoluteNow } from './receiver';

/** Longest a JetStream API request (store, read, stream setup) may take before it counts as unavailable. */
const REQUEST_TIMEOUT_MS = 3000;
const LIVE_TIMEOUT_MS = 2000;
/** Topics read from the stream at once (subscribe snapshots, refills after a gap or a reconnect). */
const SYNC_SLOTS = 16;
/** Live messages of one topic held while it is being read from the stream; beyond, it is read again after. */
const HELD_MAX = 4096;
const RETRY_MS = 1000;

/** A `sub` waiting for its topic's read from the stream. */
interface Waiter {
  readonly since: StreamPosition | undefined;
  readonly done: (s: TopicSnapshot | GatewayError) => void;
}

/** One topic of interest: its live subscription and where the hub stands against the stream. */
class Track {
  sub: Subscription | null = null;
  confirmed: Promise<void> = Promise.resolve();
  /** The hub's state follows the stream (read since the interest began or the connection came back). */
  stepped = false;
  /** Local subscribers have been served live, so a refill is delivered to them (not just adopted). */
  served = false;
  syncing = false;
  waiters: Waiter[] = [];
  /** Live messages that arrived during a read, delivered after it in order. */
  held: { readonly streamSeq: number; readonly body: Buffer }[] = [];
  overflow = false;
  retry: NodeJS.Timeout | null = null;
}

const view = (d: Uint8Array): Buffer => Buffer.from(d.buffer, d.byteOffset, d.byteLength);

/**
 * NATS with JetStream (`--nats-jetstream`): every topic's messages are numbered cluster-wide and stored
 * in one stream (jetstream-store.ts), published in groups by PublishLanes. Each node subscribes, per
 * topic of interest, to the stream's republished copy: a node receives each stored message once, in the
 * stream's order, and fans it out natively. A message whose seq does not follow the node's (a gap: an
 * outage, a slow-consumer drop) makes the node read the topic from the stream before it delivers
 * anything newer. A `sub` is answered at a cut (snapshot()), as with Redis: same guarantees, including
 * recovery on any node, cluster-wide history, latest message and idempotency keys (Nats-Msg-Id).
 */
export class JetStreamBroker implements Broker, InterestTarget {
  readonly kind = 'nats-jetstream';
  private readonly nodeId = newEpoch();
  private readonly link: NatsLink;
  readonly control: ControlTransport;
  private readonly interest: InterestTable;
  private readonly receiver: EnvelopeReceiver;
  private readonly lanes: PublishLanes;
  private readonly tracks = new Map<string, Track>();
  private readonly backoff = new Backoff(100, 5000);
  private readonly peekCursor = new MsgpackCursor();
  private readonly peek = new Envelope();
  private readonly payload = new Payload();
  private store: TopicStore | null = null;
  private up = false;
  private closed = false;
  /** Reopening the stream after JetStream did not answer. */
  private retry: NodeJS.Timeout | null = null;
  private firstReady: (() => void) | null = null;
  private freeSlots = SYNC_SLOTS;
  private readonly slotQueue: (() => void)[] = [];
  /** The idempotency key of the publish being made now (see keyed()). */
  private msgId: string | null = null;

  constructor(
    url: string,
    private readonly config: Config,
    private readonly hub: Hub,
    private readonly stats: Stats,
    metrics: GatewayMetrics,
    private readonly log: Logger,
    /** Stored messages kept per topic: the largest history size of any rule, plus one for a marker. */
    private readonly perTopic: number,
  ) {
    this.interest = new InterestTable(this, config.brokerLinger, stats);
    this.receiver = new EnvelopeReceiver(hub, stats, metrics.brokerRoundtrip, metrics.brokerLag, (t) => this.interest.has(t), this.nodeId, true, log, config.maxDepth);
    this.lanes = new PublishLanes(() => (this.up ? this.store : null), this.nodeId, config.brokerMaxPending, stats, () => stats.idempotentRepeats++);
    hub.addInterestListener(this.interest);
    this.link = new NatsLink(url, config, this.nodeId, {}, {
      connected: () => {
        for (const [topic, t] of this.tracks) this.listen(topic, t);
      },
      status: (up) => this.connected(up),
      lost: () => {
        for (const t of this.tracks.values()) t.sub = null;
      },
    }, log, 'nats-jetstream');
    this.control = this.link.control;
  }

  /** Connects in the background: a node whose broker is down still starts and serves local clients. */
  async start(): Promise<void> {
    const ready = new Promise<void>((resolve) => (this.firstReady = resolve));
    this.link.dial();
    await raceTimeout(ready, 3000);
  }

  ready(): boolean {
    return this.up && this.store !== null;
  }

  publish(topic: string, payload: Payload, source: PublishSource, startedAt: number): PublishOutcome | Promise<PublishOutcome> {
    return this.lanes.publish(topic, payload, source, performance.timeOrigin + startedAt, this.msgId);
  }

  /**
   * Runs `publish` (which calls publish() synchronously) with `msgId` as its Nats-Msg-Id: the stream
   * stores a repeat within the idempotency window once, cluster-wide.
   */
  keyed<T>(msgId: string, publish: () => T): T {
    this.msgId = msgId;
    try {
      return publish();
    } finally {
      this.msgId = null;
    }
  }

  inStep(topic: string): boolean {
    const t = this.tracks.get(topic);
    return t !== undefined && t.stepped && !t.syncing && this.up;
  }

  snapshot(topic: string, since: StreamPosition | undefined, done: (s: TopicSnapshot | GatewayError) => void): void {
    const t = this.tracks.get(topic);
    if (t === undefined || !this.ready()) return done(UNAVAILABLE);
    t.waiters.push({ since, done });
    this.sync(topic, t);
  }

  async history(topic: string, limit: number, since: StreamPosition | undefined): Promise<HistoryPage | GatewayError> {
    const store = this.ready() ? this.store : null;
    if (store === null) return UNAVAILABLE;
    try {
      const last = await this.lastOrMarker(store, topic);
      const pos = positionOf(last);
      if (since !== undefined && since.epoch !== pos.epoch) return unrecoverable(since);
      const limits = this.hub.ruleOf(topic).historyLimits;
      const from = Math.max(since === undefined ? pos.seq - limit : since.seq, pos.seq - limits.size);
      const envs = await this.read(store, last, from);
      const oldest = absoluteNow() - limits.ttlMs;
      const messages: HistoryMessage[] = [];
      for (const e of envs) {
        if (e.epoch !== pos.epoch || e.seq <= from || e.ts < oldest) continue;
        if (messages.length < limit) messages.push({ s: e.seq, d: e.json ? JSON.parse(e.data.toString('utf8')) : unpackr.unpack(e.data) });
      }
      return { seq: pos.seq, epoch: pos.epoch, messages };
    } catch (e) {
      this.log.debug({ err: (e as Error).message, topic }, 'JetStream history read failed');
      return UNAVAILABLE;
    }
  }

  subscribeTopic(topic: string): void {
    const t = new Track();
    this.tracks.set(topic, t);
    this.listen(topic, t);
    this.sync(topic, t);
  }

  unsubscribeTopic(topic: string): void {
    const t = this.tracks.get(topic);
    if (t === undefined) return;
    this.tracks.delete(topic);
    t.sub?.unsubscribe();
    if (t.retry !== null) clearTimeout(t.retry);
    for (const w of t.waiters.splice(0)) w.done(new GatewayError(ErrorCode.Unavailable, 'interest dropped'));
    t.held.length = 0;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retry !== null) clearTimeout(this.retry);
    this.interest.close();
    for (const topic of [...this.tracks.keys()]) this.unsubscribeTopic(topic);
    this.lanes.close();
    this.up = false;
    this.stats.brokerUp = false;
    await this.link.close();
  }

  /** Subscribes the topic's live subject; the subscription counts once the server answered a PING after it. */
  private listen(topic: string, t: Track): void {
    const nc = this.link.connection;
    if (nc === null || nc.isClosed()) return; // subscribed on connect
    t.sub = nc.subscribe(liveSubject(topic), { callback: (err, msg) => err === null && this.live(topic, t, msg) });
    t.confirmed = raceTimeout(nc.flush(), LIVE_TIMEOUT_MS);
  }

  /** A stored message as the stream republished it. */
  private live(topic: string, t: Track, msg: Msg): void {
    if (this.tracks.get(topic) !== t) return;
    const streamSeq = Number(msg.headers?.get('Nats-Sequence'));
    // Only the stream republishes with a sequence: anything else on our subject is foreign.
    if (!Number.isSafeInteger(streamSeq)) return void this.receiver.receiveRun(view(msg.data), Number.MAX_SAFE_INTEGER);
    if (!t.stepped || t.syncing) return this.hold(topic, t, streamSeq, Buffer.from(msg.data));
    this.apply(topic, t, streamSeq, view(msg.data));
  }

  private hold(topic: string, t: Track, streamSeq: number, body: Buffer): void {
    if (t.held.length < HELD_MAX) t.held.push({ streamSeq, body });
    else t.overflow = true;
    if (!t.syncing && t.retry === null) this.sync(topic, t);
  }

  /** Delivers a stored message that follows the hub's position (dropping what it already has), else reads the gap first. */
  private apply(topic: string, t: Track, streamSeq: number, body: Buffer): void {
    let first: Envelope;
    try {
      first = this.peek.read(this.peekCursor.reset(body));
    } catch (e) {
      if (!(e instanceof EnvelopeError)) throw e;
      return void this.receiver.receiveRun(body, Number.MAX_SAFE_INTEGER); // counted and reported as foreign
    }
    const epoch = first.epoch;
    const state = this.hub.acquire(topic);
    const after = state.seq;
    if (epoch !== state.epoch || first.seq > after + 1) {
      this.hub.releaseIfIdle(state);
      t.stepped = false;
      return this.hold(topic, t, streamSeq, Buffer.from(body));
    }
    const delivered = this.receiver.receiveRun(body, after);
    if (delivered === after) this.hub.releaseIfIdle(state);
    else this.lanes.learn(topic, { streamSeq, seq: delivered, epoch });
  }

  /** Reads `topic` from the stream (once the running read ends, if one runs). */
  private sync(topic: string, t: Track): void {
    if (t.syncing) return;
    t.syncing = true;
    void this.readTopic(topic, t).finally(() => {
      t.syncing = false;
      this.afterSync(topic, t);
    });
  }

  /**
   * The cut: the topic's last stored message is read after the live subscription took effect, so every
   * message up to it is in the stream and every later one arrives live (held meanwhile). The hub is
   * brought to that position (refilled when its subscribers were served live and the gap is retained,
   * else moved to it), then each waiting `sub` gets its snapshot, all in one synchronous step.
   */
  private async readTopic(topic: string, t: Track): Promise<void> {
    await this.slot();
    let waiters: Waiter[] = [];
    try {
      await t.confirmed;
      const store = this.ready() ? this.store : null;
      if (store === null) throw UNAVAILABLE;
      waiters = t.waiters.splice(0);
      const last = await this.lastOrMarker(store, topic);
      const pos = positionOf(last);
      const state = this.hub.acquire(topic);
      const rule = state.rule;
      // Served subscribers get what they missed: the rest of their epoch, or all of a new one (the
      // topic's numbering restarted meanwhile: its stored messages expired, or the stream was lost).
      const refillFrom = !t.served ? -1 : state.epoch === pos.epoch ? (state.seq < pos.seq ? state.seq : -1) : 0;
      let from = refillFrom >= 0 ? refillFrom : pos.seq;
      for (const w of waiters) if (w.since !== undefined && w.since.epoch === pos.epoch && w.since.seq < from) from = Math.max(w.since.seq, pos.seq - rule.historyLimits.size);
      const envs = await this.read(store, last, from);
      if (this.tracks.get(topic) !== t) throw new GatewayError(ErrorCode.Unavailable, 'interest dropped');
      const oldest = absoluteNow() - rule.historyLimits.ttlMs;
      this.bringHub(topic, pos, refillFrom >= 0 ? runAfter(envs, pos.epoch, refillFrom, pos.seq, oldest) : null, envs);
      t.stepped = t.served = true;
      this.lanes.learn(topic, pos);
      for (const w of waiters.splice(0)) {
        const since = w.since;
        const tooOld = since !== undefined && pos.seq - since.seq > rule.historyLimits.size;
        const run = since === undefined || since.epoch !== pos.epoch || since.seq > pos.seq || tooOld ? null : runAfter(envs, pos.epoch, since.seq, pos.seq, oldest);
        w.done({ seq: pos.seq, epoch: pos.epoch, replay: run === null ? null : run.map((e) => ({ seq: e.seq, data: e.data, json: e.json })) });
      }
    } catch (e) {
      const err = e instanceof GatewayError ? e : new GatewayError(ErrorCode.Unavailable, `JetStream: ${(e as Error).message}`);
      if (!(e instanceof GatewayError)) this.log.warn({ topic, err: err.reason }, 'cannot read a topic from JetStream');
      for (const w of waiters) w.done(err);
    } finally {
      this.releaseSlot();
    }
  }

  /** Moves the hub to `pos`: by delivering the missed run when there is one, else by adopting it. */
  private bringHub(topic: string, pos: Position, missed: StoredEnvelope[] | null, envs: readonly StoredEnvelope[]): void {
    if (missed !== null && missed.length > 0) {
      for (const e of missed) this.hub.deliver(topic, this.payload.setRaw(e.buf, e.dataStart, e.dataEnd, e.json), 'broker', performance.now(), e.seq, pos.epoch);
      this.stats.brokerRefilled += missed.length;
      return;
    }
    const state = this.hub.adopt(topic, pos.seq, pos.epoch);
    const latest = envs[envs.length - 1];
    // The latest message, kept as long as the topic's position is (not bound by the history TTL).
    if (state.rule.lastMessage && latest !== undefined && latest.seq === pos.seq && state.last?.seq !== pos.seq) {
      this.hub.keepLast(state, pos.seq, this.payload.setRaw(latest.buf, latest.dataStart, latest.dataEnd, latest.json).msgpack());
    }
    this.hub.releaseIfIdle(state);
  }

  /** The envelopes needed after `from`: read back from the last stored message until one starts at or before `from` + 1. */
  private async read(store: TopicStore, last: StoredMessage, from: number): Promise<StoredEnvelope[]> {
    const first = (m: StoredMessage): number => this.peek.read(this.peekCursor.reset(m.body)).seq;
    const messages = await store.back(last, (m) => first(m) <= from + 1, this.perTopic);
    return envelopesOf(messages, this.config.maxDepth);
  }

  /** The topic's last stored message; a topic with none gets a marker, so every node numbers it in one epoch. */
  private async lastOrMarker(store: TopicStore, topic: string): Promise<StoredMessage> {
    for (let attempt = 0; attempt < 8; attempt++) {
      const last = await store.last(topic);
      if (last !== null) return last;
      const marker = encodeMarker(topic, newEpoch(), this.nodeId);
      try {
        const ack = await store.append(topic, marker, 0, null);
        return { streamSeq: ack.seq, body: marker, previous: 0 };
      } catch (e) {
        if (!(e instanceof Conflict)) throw e;
      }
    }
    throw UNAVAILABLE;
  }

  /** After a read: the held live messages in order, or another read if the topic fell behind meanwhile. */
  private afterSync(topic: string, t: Track): void {
    if (this.tracks.get(topic) !== t || this.closed) return;
    if (!t.stepped) {
      // JetStream did not answer: try again shortly (live messages stay held, bounded).
      t.retry ??= setTimeout(() => {
        t.retry = null;
        if (this.tracks.get(topic) === t) this.sync(topic, t);
      }, RETRY_MS).unref();
      return;
    }
    if (t.overflow) {
      t.overflow = false;
      t.held.length = 0;
      t.stepped = false;
      return this.sync(topic, t);
    }
    for (const m of t.held.splice(0)) {
      if (t.syncing || !t.stepped) t.held.push(m);
      else this.apply(topic, t, m.streamSeq, m.body);
    }
    if (t.waiters.length > 0) this.sync(topic, t);
  }

  private async slot(): Promise<void> {
    if (this.freeSlots > 0) {
      this.freeSlots--;
      return;
    }
    await new Promise<void>((resolve) => this.slotQueue.push(resolve));
  }

  private releaseSlot(): void {
    const next = this.slotQueue.shift();
    if (next !== undefined) next();
    else this.freeSlots++;
  }

  /**
   * Connection state changes. Down: no topic is in step any more (messages may be missed). Up: the
   * stream is opened (again: the server may have restarted without it) and every topic is read again,
   * refilling what its subscribers missed meanwhile.
   */
  private connected(up: boolean): void {
    this.up = up;
    if (!up) {
      this.setReady();
      for (const t of this.tracks.values()) t.stepped = false;
      return;
    }
    void this.openStore();
  }

  private async openStore(): Promise<void> {
    const nc = this.link.connection;
    if (nc === null || !this.up || this.closed) return;
    try {
      const { store, differs } = await TopicStore.open(nc, this.limits(), REQUEST_TIMEOUT_MS);
      if (differs !== null) this.log.warn({ broker: 'nats-jetstream' }, `${differs}; using it as it is`);
      this.store = store;
    } catch (e) {
      this.store = null;
      this.setReady();
      this.log.warn({ err: (e as Error).message, broker: 'nats-jetstream' }, 'JetStream unavailable; retrying');
      this.retry = setTimeout(() => void this.openStore(), this.backoff.next()).unref();
      return;
    }
    this.backoff.reset();
    this.lanes.forget();
    this.setReady();
    for (const [topic, t] of this.tracks) {
      t.stepped = false;
      t.confirmed = raceTimeout(nc.flush(), LIVE_TIMEOUT_MS);
      this.sync(topic, t);
    }
    this.firstReady?.();
  }

  private limits() {
    const c = this.config;
    return { perTopic: this.perTopic, maxAgeMs: Math.max(c.positionTtl, c.historyTtl) * 1000, duplicateWindowMs: c.idempotencyWindow * 1000, replicas: c.natsJetstreamReplicas };
  }

  private setReady(): void {
    const ready = this.ready();
    if (ready === this.stats.brokerUp || this.closed) return;
    this.stats.brokerUp = ready;
    this.log[ready ? 'info' : 'warn']({ broker: 'nats-jetstream' }, ready ? 'broker connected' : 'broker disconnected');
  }
}
