import type { Msg, NatsConnection, Subscription } from 'nats';
import type { Logger } from '../log';
import type { Stats } from '../metrics/stats';
import { ErrorCode, GatewayError } from '../protocol/codes';
import type { StreamPosition } from '../protocol/commands';
import { Payload } from '../protocol/payload';
import type { Hub } from '../pubsub/hub';
import type { TopicSnapshot } from './broker';
import { Envelope, EnvelopeError, MsgpackCursor } from './envelope';
import { type Position, type StoredEnvelope, positionOf, runAfter } from './jetstream-batch';
import { type PublishLanes, UNAVAILABLE } from './jetstream-lanes';
import type { TopicReader } from './jetstream-reader';
import { type TopicStore, liveSubject } from './jetstream-store';
import { raceTimeout } from './lifecycle';
import { type EnvelopeReceiver, absoluteNow } from './receiver';

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

/** What the follower needs from its broker. */
export interface FollowDeps {
  readonly hub: Hub;
  readonly stats: Stats;
  readonly receiver: EnvelopeReceiver;
  readonly lanes: PublishLanes;
  readonly reader: TopicReader;
  /** The open stream, null while JetStream is unavailable. */
  readonly store: () => TopicStore | null;
  readonly connection: () => NatsConnection | null;
  readonly log: Logger;
}

/**
 * The topics this node follows (has interest in): each one's live subscription to the stream's
 * republished subject, and the hub kept in step with the stream. A run whose first seq follows the hub's
 * is delivered at once; anything else (a gap: an outage, a message lost in a cut; a new epoch) makes the
 * topic's live messages wait while it is read from the stream, refilled, then they follow in order. A
 * `sub` is answered at such a read (the cut), as with Redis.
 */
export class TopicFollower {
  private readonly tracks = new Map<string, Track>();
  private readonly peekCursor = new MsgpackCursor();
  private readonly peek = new Envelope();
  private readonly payload = new Payload();
  private freeSlots = SYNC_SLOTS;
  private readonly slotQueue: (() => void)[] = [];
  private closed = false;

  constructor(private readonly d: FollowDeps) {}

  follow(topic: string): void {
    const t = new Track();
    this.tracks.set(topic, t);
    this.listen(topic, t);
    this.sync(topic, t);
  }

  unfollow(topic: string): void {
    const t = this.tracks.get(topic);
    if (t === undefined) return;
    this.tracks.delete(topic);
    t.sub?.unsubscribe();
    if (t.retry !== null) clearTimeout(t.retry);
    for (const w of t.waiters.splice(0)) w.done(new GatewayError(ErrorCode.Unavailable, 'interest dropped'));
    t.held.length = 0;
  }

  inStep(topic: string): boolean {
    const t = this.tracks.get(topic);
    return t !== undefined && t.stepped && !t.syncing;
  }

  snapshot(topic: string, since: StreamPosition | undefined, done: (s: TopicSnapshot | GatewayError) => void): void {
    const t = this.tracks.get(topic);
    if (t === undefined || this.d.store() === null) return done(UNAVAILABLE);
    t.waiters.push({ since, done });
    this.sync(topic, t);
  }

  /** A new connection: every followed topic subscribed on it. */
  listenAll(): void {
    for (const [topic, t] of this.tracks) this.listen(topic, t);
  }

  /** The connection closed for good: its subscriptions are gone. */
  dropSubscriptions(): void {
    for (const t of this.tracks.values()) t.sub = null;
  }

  /** The connection went down: messages may be missed, so no topic is in step. */
  outOfStep(): void {
    for (const t of this.tracks.values()) t.stepped = false;
  }

  /** The stream is (again) open: every topic read again once its restored subscription took effect. */
  resyncAll(nc: NatsConnection): void {
    for (const [topic, t] of this.tracks) {
      t.stepped = false;
      t.confirmed = raceTimeout(nc.flush(), LIVE_TIMEOUT_MS);
      this.sync(topic, t);
    }
  }

  close(): void {
    this.closed = true;
    for (const topic of [...this.tracks.keys()]) this.unfollow(topic);
  }

  /** Subscribes the topic's live subject; the subscription counts once the server answered a PING after it. */
  private listen(topic: string, t: Track): void {
    const nc = this.d.connection();
    if (nc === null || nc.isClosed()) return; // subscribed on connect
    t.sub = nc.subscribe(liveSubject(topic), { callback: (err, msg) => err === null && this.live(topic, t, msg) });
    t.confirmed = raceTimeout(nc.flush(), LIVE_TIMEOUT_MS);
  }

  /** A stored message as the stream republished it. */
  private live(topic: string, t: Track, msg: Msg): void {
    if (this.tracks.get(topic) !== t) return;
    const streamSeq = Number(msg.headers?.get('Nats-Sequence'));
    // Only the stream republishes with a sequence: anything else on our subject is foreign.
    if (!Number.isSafeInteger(streamSeq)) return void this.d.receiver.receiveRun(view(msg.data), Number.MAX_SAFE_INTEGER);
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
      return void this.d.receiver.receiveRun(body, Number.MAX_SAFE_INTEGER); // counted and reported as foreign
    }
    const epoch = first.epoch;
    const hub = this.d.hub;
    const state = hub.acquire(topic);
    const after = state.seq;
    if (epoch !== state.epoch || first.seq > after + 1) {
      hub.releaseIfIdle(state);
      t.stepped = false;
      return this.hold(topic, t, streamSeq, Buffer.from(body));
    }
    const delivered = this.d.receiver.receiveRun(body, after);
    if (delivered === after) hub.releaseIfIdle(state);
    else this.d.lanes.learn(topic, { streamSeq, seq: delivered, epoch });
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
      const store = this.d.store();
      if (store === null) throw UNAVAILABLE;
      waiters = t.waiters.splice(0);
      const last = await this.d.reader.lastOrMarker(store, topic);
      const pos = positionOf(last);
      const state = this.d.hub.acquire(topic);
      const limits = state.rule.historyLimits;
      // Served subscribers get what they missed: the rest of their epoch, or all of a new one (the
      // topic's numbering restarted meanwhile: its stored messages expired, or the stream was lost).
      const refillFrom = !t.served ? -1 : state.epoch === pos.epoch ? (state.seq < pos.seq ? state.seq : -1) : 0;
      let from = refillFrom >= 0 ? refillFrom : pos.seq;
      for (const w of waiters) if (w.since !== undefined && w.since.epoch === pos.epoch && w.since.seq < from) from = Math.max(w.since.seq, pos.seq - limits.size);
      const envs = await this.d.reader.read(store, last, from);
      if (this.tracks.get(topic) !== t) throw new GatewayError(ErrorCode.Unavailable, 'interest dropped');
      const oldest = absoluteNow() - limits.ttlMs;
      this.bringHub(topic, pos, refillFrom >= 0 ? runAfter(envs, pos.epoch, refillFrom, pos.seq, oldest) : null, envs);
      t.stepped = t.served = true;
      this.d.lanes.learn(topic, pos);
      for (const w of waiters.splice(0)) {
        const since = w.since;
        const tooOld = since !== undefined && pos.seq - since.seq > limits.size;
        const run = since === undefined || since.epoch !== pos.epoch || since.seq > pos.seq || tooOld ? null : runAfter(envs, pos.epoch, since.seq, pos.seq, oldest);
        w.done({ seq: pos.seq, epoch: pos.epoch, replay: run === null ? null : run.map((e) => ({ seq: e.seq, data: e.data, json: e.json })) });
      }
    } catch (e) {
      const err = e instanceof GatewayError ? e : new GatewayError(ErrorCode.Unavailable, `JetStream: ${(e as Error).message}`);
      if (!(e instanceof GatewayError)) this.d.log.warn({ topic, err: err.reason }, 'cannot read a topic from JetStream');
      for (const w of waiters) w.done(err);
    } finally {
      this.releaseSlot();
    }
  }

  /** Moves the hub to `pos`: by delivering the missed run when there is one, else by adopting it. */
  private bringHub(topic: string, pos: Position, missed: StoredEnvelope[] | null, envs: readonly StoredEnvelope[]): void {
    const hub = this.d.hub;
    if (missed !== null && missed.length > 0) {
      for (const e of missed) hub.deliver(topic, this.payload.setRaw(e.buf, e.dataStart, e.dataEnd, e.json), 'broker', performance.now(), e.seq, pos.epoch);
      this.d.stats.brokerRefilled += missed.length;
      return;
    }
    const state = hub.adopt(topic, pos.seq, pos.epoch);
    const latest = envs[envs.length - 1];
    // The latest message, kept as long as the topic's position is (not bound by the history TTL).
    if (state.rule.lastMessage && latest !== undefined && latest.seq === pos.seq && state.last?.seq !== pos.seq) {
      hub.keepLast(state, pos.seq, this.payload.setRaw(latest.buf, latest.dataStart, latest.dataEnd, latest.json).msgpack());
    }
    hub.releaseIfIdle(state);
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
}
