import { BroadcastChannel } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import type { ControlTransport } from '../cluster/control-bus';
import type { PublishSource, Stats } from '../metrics/stats';
import { ErrorCode, GatewayError } from '../protocol/codes';
import { Payload } from '../protocol/payload';
import type { Hub } from '../pubsub/hub';
import type { MeshLink } from '../workers/mesh';
import type { StreamPosition } from '../protocol/commands';
import type { Broker, HistoryPage, PublishOutcome, TopicSnapshot } from './broker';
import { InterestTable, type InterestTarget } from './interest';
import { readLocalHistory } from '../pubsub/history-read';
import { Routes } from '../workers/routes';
import { answerHistory, answerSnapshot, bareSnapshot, historyRequest, readHistory, readSnapshot, snapshotRequest } from '../workers/owner-answers';
import { Envelope, MsgpackCursor, envelopeBound, writeEnvelope } from './envelope';
import { publishWallTime } from '../metrics/publish-clock';

// Record kinds on the mesh. PUBLISH: an unnumbered envelope for the topic's owner, id = the publisher's
// request id. DELIVER: a numbered envelope for each worker that holds subscribers of the topic, id = that
// request id (0: none). ACK: the number (msgpack) for a publisher's worker that holds none, id = its
// request id. INTEREST / WITHDRAW: a topic name for its owner, a worker gained / lost its subscribers.
// SNAPSHOT: msgpack [topic, since] for its owner; SNAPSHOT_REPLY (see owner-answers.ts), written after
// every message the owner sent before it, so the asking worker is at exactly that position when it
// arrives. HISTORY / HISTORY_REPLY: a `history` op answered by the owner. SYNCED: to a replacement
// worker, after the interest records of the topics it owns (see catchAll).
const PUBLISH = 1;
const DELIVER = 2;
const SNAPSHOT = 3;
const SNAPSHOT_REPLY = 4;
const ACK = 5;
const INTEREST = 6;
const WITHDRAW = 7;
const HISTORY = 8;
const HISTORY_REPLY = 9;
const SYNCED = 10;

/** FNV-1a over the topic's UTF-16 units: which worker owns (numbers) it. */
export function ownerOf(topic: string, workers: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < topic.length; i++) h = Math.imul(h ^ topic.charCodeAt(i), 0x01000193);
  return (h >>> 0) % workers;
}

/** A publish waiting for its owner's number. */
interface Waiting {
  readonly id: number;
  /** Counted here when the owner answers with an ACK (no local delivery counts it). */
  readonly source: PublishSource;
  readonly resolve: (outcome: PublishOutcome) => void;
}

/** A snapshot asked of an owner: `interest` is the interest record it followed (stepped only if still that one). */
interface Asked {
  readonly topic: string;
  readonly since: StreamPosition | undefined;
  readonly interest: number;
  readonly done: (s: TopicSnapshot | GatewayError) => void;
}

/** Not an error to clients: subscribe serves from the local hub (see snapshot()). */
const LOCAL = new GatewayError(ErrorCode.Unavailable, 'served by this worker');
const unavailable = (reason: string): GatewayError => new GatewayError(ErrorCode.Unavailable, reason);
const SLOW_OWNER = 'the owner worker of this topic is not keeping up';

/**
 * The broker between the worker threads of one process (--workers). Each topic has one owner worker
 * (a hash of its name) whose hub numbers it and keeps its history, position and last message, as a
 * single node would: a publish on the owner is delivered locally and numbered at once; a publish
 * elsewhere goes to the owner over the mesh. The owner sends the numbered message only to the workers
 * that hold subscribers of the topic (interest routing: each says so when its first subscriber comes
 * and its last goes, after --broker-linger), whose hubs deliver it with that seq and epoch. A worker
 * that starts receiving a topic asks the owner for a snapshot at the cut (position, the messages a
 * resume needs, the last message), so subscribe-with-recovery and lastMessage are served exactly as
 * one node would; a `history` op elsewhere than on the owner is answered by the owner. A publisher's
 * promise settles when its own worker has delivered the numbered message (its local subscribers have it
 * before the ack), or on the owner's ACK when its worker holds no subscribers of the topic.
 *
 * Bounds: a full ring to a peer means that peer is not keeping up; the message is not queued but
 * counted (wsgate_worker_ring_full_total), and the peer's hub sees a gap in the sequence and clears
 * that topic's history, as a node that missed messages does (resume then says what cannot be served).
 * A publish whose owner's ring is full is refused with `unavailable`.
 */
export class InProcessBroker implements Broker, InterestTarget {
  readonly kind = 'in-process';
  readonly control: ControlTransport;
  private readonly channel: BroadcastChannel;
  private readonly cursor = new MsgpackCursor();
  private readonly envelope = new Envelope();
  private readonly payload = new Payload();
  /** Reused buffers: one envelope being written, one control record being read (grown for large ones). */
  private out = Buffer.allocUnsafe(64 * 1024);
  private scratch = Buffer.allocUnsafe(64 * 1024);
  private readonly waiting: Waiting[][];
  /** Snapshots asked of owners, by request id. */
  private readonly snapshots = new Map<number, Asked>();
  /** History pages asked of owners, by request id. */
  private readonly histories = new Map<number, { owner: number; done: (p: HistoryPage | GatewayError) => void }>();
  /** On the owner: the other workers holding subscribers of each of its topics. */
  private readonly routes = new Routes();
  /** Topics of other owners this worker told its interest in: the id of that interest record. */
  private readonly held = new Map<string, number>();
  private readonly interest: InterestTable;
  /**
   * Only on a replacement worker (a worker died): the peers that have not yet told it which of its
   * topics they hold subscribers of (SYNCED). They get every numbered message meanwhile, so none of
   * their subscribers misses one numbered before their interest arrived.
   */
  private readonly catchAll = new Set<number>();
  /**
   * Topics this worker's hub holds at their owner's position: a snapshot taken under the interest
   * still held, so every later message arrives in order and subscribers are served locally.
   */
  private readonly stepped = new Set<string>();
  private pending = 0;
  private nextId = 0;
  private up = false;

  constructor(
    private readonly hub: Hub,
    private readonly stats: Stats,
    private readonly mesh: MeshLink,
    readonly nodeId: string,
    /** Names the process's control channel (one per process). */
    channelName: string,
    private readonly maxPending: number,
    /** Bound of the stepped set (then it starts over: topics get a snapshot again). */
    private readonly maxStepped: number,
    /** ms a topic stays routed here after its last local subscriber left (--broker-linger). */
    lingerMs: number,
    /** This worker replaces one that died: its peers' interest in its topics is still on the way. */
    replacement = false,
  ) {
    if (replacement) for (let i = 0; i < mesh.count; i++) if (i !== mesh.index) this.catchAll.add(i);
    this.waiting = Array.from({ length: mesh.count }, () => []);
    this.channel = new BroadcastChannel(channelName);
    this.control = controlTransport(this.channel, nodeId);
    this.interest = new InterestTable(this, lingerMs, stats);
    hub.addInterestListener(this.interest);
  }

  async start(): Promise<void> {
    this.mesh.start(this.receive);
    this.up = true;
    this.stats.brokerUp = true;
  }

  ready(): boolean {
    return this.up;
  }

  private owner(topic: string): number {
    return ownerOf(topic, this.mesh.count);
  }

  publish(topic: string, payload: Payload, source: PublishSource, startedAt: number, quiet = false): PublishOutcome | Promise<PublishOutcome> {
    const owner = this.owner(topic);
    if (owner === this.mesh.index) {
      const seq = this.hub.deliver(topic, payload, source, startedAt);
      this.sendNumbered(topic, seq, this.hub.lastEpoch, publishWallTime(startedAt), this.nodeId, source, payload, 0, -1);
      return seq;
    }
    if (this.pending >= this.maxPending) {
      this.stats.brokerFailures++;
      return unavailable('too many publishes waiting for their owner worker');
    }
    const len = this.encode(topic, 0, '', publishWallTime(startedAt), this.nodeId, source, payload);
    // Id 0: nobody waits for the number, so the owner sends no ACK (no wake of this worker for it).
    const id = quiet ? 0 : ++this.nextId;
    if (!this.mesh.write(owner, PUBLISH, id, this.out, len)) {
      this.stats.brokerFailures++;
      return unavailable(SLOW_OWNER);
    }
    this.stats.brokerPublished++;
    this.stats.brokerBytesOut += len;
    if (quiet) {
      // Counted here, once: its delivery here (if any) counts as one that came over the mesh.
      this.stats.publishes[source]++;
      return 0;
    }
    this.pending++;
    return new Promise((resolve) => (this.waiting[owner] as Waiting[]).push({ id, source, resolve }));
  }

  /** A local subscriber of another owner's topic came (the interest table calls it once per topic). */
  subscribeTopic(topic: string): void {
    const owner = this.owner(topic);
    if (owner === this.mesh.index) return;
    const id = ++this.nextId;
    const len = this.out.write(topic, 0, 'utf8');
    // Not written (ring full): the next snapshot of the topic tries again.
    if (this.mesh.write(owner, INTEREST, id, this.out, len)) this.held.set(topic, id);
  }

  /** The last one went (after the linger): the owner stops sending it, so the local state falls out of step. */
  unsubscribeTopic(topic: string): void {
    this.stepped.delete(topic);
    if (!this.held.delete(topic)) return;
    const len = this.out.write(topic, 0, 'utf8');
    this.mesh.write(this.owner(topic), WITHDRAW, 0, this.out, len);
  }

  inStep(topic: string): boolean {
    return this.stepped.has(topic) || this.owner(topic) === this.mesh.index;
  }

  /**
   * Asks the topic's owner for its position (and, with `since`, the messages after it; its last
   * message). On the owner, or once in step without `since`, the local hub is the owner's state already:
   * the error value tells the caller to serve from it.
   */
  snapshot(topic: string, since: StreamPosition | undefined, done: (s: TopicSnapshot | GatewayError) => void): void {
    const owner = this.owner(topic);
    // In step, the local history may still start later than the owner's (it began at this worker's cut):
    // a `since` it cannot serve is asked of the owner.
    if (owner === this.mesh.index || (this.stepped.has(topic) && since === undefined)) return done(LOCAL);
    if (!this.held.has(topic) && (this.hub.get(topic)?.subscribers ?? 0) > 0) this.subscribeTopic(topic);
    const id = ++this.nextId;
    const req = snapshotRequest(topic, since);
    if (!this.mesh.write(owner, SNAPSHOT, id, req, req.length)) return done(unavailable(SLOW_OWNER));
    this.snapshots.set(id, { topic, since, interest: this.held.get(topic) ?? -1, done });
  }

  /** A `history` op: served here on the topic's owner, else asked of the owner (the only complete history). */
  history(topic: string, limit: number, since: StreamPosition | undefined): Promise<HistoryPage | GatewayError> {
    const owner = this.owner(topic);
    if (owner === this.mesh.index) {
      const state = this.hub.acquire(topic);
      const page = readLocalHistory(state, limit, since);
      this.hub.releaseIfIdle(state);
      return Promise.resolve(page);
    }
    if (this.histories.size >= this.maxPending) return Promise.resolve(unavailable('too many history requests waiting for their owner worker'));
    const id = ++this.nextId;
    const req = historyRequest(topic, limit, since);
    if (!this.mesh.write(owner, HISTORY, id, req, req.length)) return Promise.resolve(unavailable(SLOW_OWNER));
    return new Promise((done) => this.histories.set(id, { owner, done }));
  }

  private snapshotAsked(from: number, id: number, bytes: Buffer): void {
    const answer = answerSnapshot(this.hub, bytes);
    if (answer === null) return;
    if (this.mesh.write(from, SNAPSHOT_REPLY, id, answer.reply, answer.reply.length)) return;
    // Too large for the room left: the position alone (the asker answers `recovered:false`).
    const bare = bareSnapshot(this.hub, answer.topic);
    this.mesh.write(from, SNAPSHOT_REPLY, id, bare, bare.length);
  }

  private snapshotTaken(id: number, bytes: Buffer): void {
    const asked = this.snapshots.get(id);
    if (asked === undefined) return;
    this.snapshots.delete(id);
    const snap = readSnapshot(bytes);
    const state = this.hub.adopt(asked.topic, snap.seq, snap.epoch);
    if (snap.last !== null && snap.last.seq === snap.seq && state.rule.lastMessage) this.hub.keepLast(state, snap.seq, snap.last.data);
    // In step only if the owner has been sending this worker the topic since before this cut.
    if (asked.interest >= 0 && this.held.get(asked.topic) === asked.interest) this.step(state.name);
    const since = asked.since;
    const replay = since !== undefined && since.epoch === snap.epoch && since.seq === snap.seq ? [] : snap.replay;
    asked.done({ seq: snap.seq, epoch: snap.epoch, replay });
    this.hub.releaseIfIdle(state);
  }

  private historyTaken(id: number, bytes: Buffer): void {
    const asked = this.histories.get(id);
    if (asked === undefined) return;
    this.histories.delete(id);
    asked.done(readHistory(bytes));
  }

  private step(topic: string): void {
    if (this.stepped.has(topic)) return;
    if (this.stepped.size >= this.maxStepped) this.stepped.clear();
    this.stepped.add(topic);
  }

  private encode(topic: string, seq: number, epoch: string, ts: number, origin: string, source: PublishSource, payload: Payload): number {
    const bound = envelopeBound(topic, epoch, origin, source, payload);
    if (bound > this.out.length) this.out = Buffer.allocUnsafe(bound);
    return writeEnvelope(this.out, topic, seq, epoch, ts, origin, source, payload);
  }

  /**
   * The owner's numbered message to every worker holding subscribers of the topic; `from` (the
   * publisher's worker, -1: this one) gets it with the request `id`, or an ACK if it holds none.
   */
  private sendNumbered(topic: string, seq: number, epoch: string, ts: number, origin: string, source: PublishSource, payload: Payload, id: number, from: number): void {
    const to = this.catchAll.size === 0 ? this.routes.of(topic) : [...new Set([...this.routes.of(topic), ...this.catchAll])];
    let acked = from < 0;
    if (to.length > 0) {
      const len = this.encode(topic, seq, epoch, ts, origin, source, payload);
      for (let i = 0; i < to.length; i++) {
        const w = to[i] as number;
        acked ||= w === from;
        if (this.mesh.write(w, DELIVER, w === from ? id : 0, this.out, len)) {
          this.stats.brokerPublished++;
          this.stats.brokerBytesOut += len;
        }
      }
    }
    if (!acked && id !== 0) {
      const n = this.out.writeDoubleLE(seq, 0);
      this.mesh.write(from, ACK, id, this.out, n);
    }
  }

  private readonly receive = (from: number, kind: number, id: number, bytes: Buffer, start: number, len: number): void => {
    this.stats.brokerReceived++;
    this.stats.brokerBytesIn += len;
    // Read in place: the record stays in the ring until this returns, and the hub keeps views of the
    // payload only while it delivers (what it keeps, it copies: history, last message, delta base).
    if (kind === PUBLISH || kind === DELIVER) return this.message(from, kind, id, bytes, start, start + len);
    // Control records are rare: read from a private copy, whose views their readers may hand on.
    if (len > this.scratch.length) this.scratch = Buffer.allocUnsafe(len);
    bytes.copy(this.scratch, 0, start, start + len);
    if (kind === ACK) return this.settle(from, id, this.scratch.readDoubleLE(0), true);
    if (kind === INTEREST) return this.routes.add(this.scratch.toString('utf8', 0, len), from);
    if (kind === WITHDRAW) return this.routes.remove(this.scratch.toString('utf8', 0, len), from);
    if (kind === SYNCED) return void this.catchAll.delete(from);
    const body = this.scratch.subarray(0, len);
    if (kind === SNAPSHOT) return this.snapshotAsked(from, id, body);
    if (kind === SNAPSHOT_REPLY) return this.snapshotTaken(id, body);
    if (kind === HISTORY) {
      const reply = answerHistory(this.hub, body);
      this.mesh.write(from, HISTORY_REPLY, id, reply, reply.length);
      return;
    }
    if (kind === HISTORY_REPLY) return this.historyTaken(id, body);
  };

  /** A PUBLISH to number (this worker owns the topic) or a numbered DELIVER: `bytes[start, end)`. */
  private message(from: number, kind: number, id: number, bytes: Buffer, start: number, end: number): void {
    const env = this.envelope.read(this.cursor.reset(bytes, start, end));
    const payload = this.payload.setRaw(env.buf, env.dataStart, env.dataEnd, env.json);
    const now = performance.now();
    if (kind === PUBLISH) {
      const seq = this.hub.deliver(env.topic, payload, 'broker', now);
      this.sendNumbered(env.topic, seq, this.hub.lastEpoch, env.ts, env.origin, env.source, payload, id, from);
      return;
    }
    // Our own publish, unless quiet (id 0: counted when it was sent).
    const own = env.origin === this.nodeId && id !== 0;
    const seq = this.hub.deliver(env.topic, payload, own ? env.source : 'broker', now, env.seq, env.epoch);
    if (own) this.settle(from, id, seq);
  }

  /**
   * Settles request `id` to `owner` with `seq` (`acked`: no local delivery, count the publish here);
   * earlier ones still waiting were lost on the way (full ring).
   */
  private settle(owner: number, id: number, seq: number, acked = false): void {
    const queue = this.waiting[owner] as Waiting[];
    while (queue.length > 0 && (queue[0] as Waiting).id <= id) {
      const w = queue.shift() as Waiting;
      this.pending--;
      if (w.id !== id) w.resolve(unavailable('the owner worker of this topic did not keep up'));
      else {
        if (acked) this.stats.publishes[w.source]++;
        w.resolve(seq);
      }
    }
  }

  /** Worker `index` was replaced: what it had not numbered is lost, as with a node that restarted. */
  peerReplaced(index: number): void {
    // Its subscribers are gone with it (its replacement starts without any).
    this.routes.dropWorker(index);
    this.catchAll.delete(index);
    // Its topics start over with a new epoch: tell the new owner which it must send here, and take their
    // position from it again.
    for (const topic of [...this.held.keys()]) {
      if (this.owner(topic) !== index) continue;
      this.stepped.delete(topic);
      this.held.delete(topic);
      if (this.up) this.subscribeTopic(topic);
    }
    if (this.up) this.mesh.write(index, SYNCED, 0, this.out, 0);
    for (const topic of this.stepped) if (this.owner(topic) === index) this.stepped.delete(topic);
    const restarted = unavailable('the owner worker of this topic restarted');
    for (const [id, asked] of this.snapshots) {
      if (this.owner(asked.topic) !== index) continue;
      this.snapshots.delete(id);
      asked.done(restarted);
    }
    for (const [id, asked] of this.histories) {
      if (asked.owner !== index) continue;
      this.histories.delete(id);
      asked.done(restarted);
    }
    const queue = this.waiting[index] as Waiting[];
    for (const w of queue.splice(0)) {
      this.pending--;
      w.resolve(restarted);
    }
  }

  async close(): Promise<void> {
    this.up = false;
    this.stats.brokerUp = false;
    this.mesh.close();
    this.channel.close();
    this.interest.close();
    for (let i = 0; i < this.waiting.length; i++) this.peerReplaced(i);
    for (const asked of this.snapshots.values()) asked.done(unavailable('closing'));
    this.snapshots.clear();
    this.routes.clear();
  }
}

/** Control messages between workers: rare (heartbeats, queries), so a BroadcastChannel's clone is fine. */
function controlTransport(channel: BroadcastChannel, nodeId: string): ControlTransport {
  return {
    nodeId,
    send(to, message) {
      channel.postMessage({ to, message });
    },
    onControl(receive) {
      channel.onmessage = (event) => {
        const { to, message } = (event as unknown as { data: { to: string | null; message: Uint8Array } }).data;
        if (to === null || to === nodeId) receive(Buffer.from(message.buffer, message.byteOffset, message.byteLength));
      };
    },
  };
}
