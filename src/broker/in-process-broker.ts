import { BroadcastChannel } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import type { ControlTransport } from '../cluster/control-bus';
import type { PublishSource, Stats } from '../metrics/stats';
import { ErrorCode, GatewayError } from '../protocol/codes';
import { Payload } from '../protocol/payload';
import type { Hub } from '../pubsub/hub';
import type { MeshLink } from '../workers/mesh';
import type { StreamPosition } from '../protocol/commands';
import { packr, unpackr } from '../protocol/msgpack';
import type { Broker, PublishOutcome, TopicSnapshot } from './broker';
import { Envelope, MsgpackCursor, envelopeBound, writeEnvelope } from './envelope';
import { publishWallTime } from '../metrics/publish-clock';

// Record kinds on the mesh. PUBLISH: an unnumbered envelope for the topic's owner, id = the publisher's
// request id. DELIVER: a numbered envelope for every other worker, id = that request id (0: none).
// SNAPSHOT: a topic name for its owner; SNAPSHOT_REPLY: msgpack [seq, epoch], written after every
// message the owner sent before it, so the asking worker is at exactly that position when it arrives.
const PUBLISH = 1;
const DELIVER = 2;
const SNAPSHOT = 3;
const SNAPSHOT_REPLY = 4;

/** FNV-1a over the topic's UTF-16 units: which worker owns (numbers) it. */
export function ownerOf(topic: string, workers: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < topic.length; i++) h = Math.imul(h ^ topic.charCodeAt(i), 0x01000193);
  return (h >>> 0) % workers;
}

/** A publish waiting for its owner's number. */
interface Waiting {
  readonly id: number;
  readonly resolve: (outcome: PublishOutcome) => void;
}

/** Not an error to clients: subscribe serves from the local hub (see snapshot()). */
const LOCAL = new GatewayError(ErrorCode.Unavailable, 'served by this worker');
const unavailable = (reason: string): GatewayError => new GatewayError(ErrorCode.Unavailable, reason);

/**
 * The broker between the worker threads of one process (--workers). Each topic has one owner worker
 * (a hash of its name) whose hub numbers it, as a single node would: a publish on the owner is
 * delivered locally and numbered at once; a publish elsewhere goes to the owner over the mesh. The
 * owner sends the numbered message to every other worker, whose hubs deliver it with that seq and
 * epoch, so every worker keeps the same history, positions and last message for every topic and
 * serves subscribe-with-recovery, `history` and `lastMessage` locally, exactly as one node would. A
 * publisher's promise settles when its own worker has delivered the numbered message (its local
 * subscribers have it before the ack).
 *
 * Bounds: a full ring to a peer means that peer is not keeping up; the message is not queued but
 * counted (wsgate_worker_ring_full_total), and the peer's hub sees a gap in the sequence and clears
 * that topic's history, as a node that missed messages does (resume then says what cannot be served).
 * A publish whose owner's ring is full is refused with `unavailable`.
 */
export class InProcessBroker implements Broker {
  readonly kind = 'in-process';
  readonly control: ControlTransport;
  private readonly channel: BroadcastChannel;
  private readonly cursor = new MsgpackCursor();
  private readonly envelope = new Envelope();
  private readonly payload = new Payload();
  /** Reused buffers: one envelope being written, one record being read (grown for large messages). */
  private out = Buffer.allocUnsafe(64 * 1024);
  private scratch = Buffer.allocUnsafe(64 * 1024);
  private readonly waiting: Waiting[][];
  /** Snapshots asked of owners, by request id. */
  private readonly snapshots = new Map<number, { topic: string; since: StreamPosition | undefined; done: (s: TopicSnapshot | GatewayError) => void }>();
  /**
   * Topics this worker's hub holds at their owner's position (it received a numbered message or a
   * snapshot since): every later message arrives in order, so subscribers are served locally.
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
  ) {
    this.waiting = Array.from({ length: mesh.count }, () => []);
    this.channel = new BroadcastChannel(channelName);
    this.control = controlTransport(this.channel, nodeId);
  }

  async start(): Promise<void> {
    this.mesh.start(this.receive);
    this.up = true;
    this.stats.brokerUp = true;
  }

  ready(): boolean {
    return this.up;
  }

  publish(topic: string, payload: Payload, source: PublishSource, startedAt: number): PublishOutcome | Promise<PublishOutcome> {
    const owner = ownerOf(topic, this.mesh.count);
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
    const id = ++this.nextId;
    if (!this.mesh.write(owner, PUBLISH, id, this.out, len)) {
      this.stats.brokerFailures++;
      return unavailable('the owner worker of this topic is not keeping up');
    }
    this.stats.brokerPublished++;
    this.stats.brokerBytesOut += len;
    this.pending++;
    return new Promise((resolve) => (this.waiting[owner] as Waiting[]).push({ id, resolve }));
  }

  inStep(topic: string): boolean {
    return this.stepped.has(topic) || ownerOf(topic, this.mesh.count) === this.mesh.index;
  }

  /**
   * Only for a topic not in step: asks its owner for its position. On the owner, or once in step, the
   * local hub is the owner's state already: the error value tells the caller to serve from it.
   */
  snapshot(topic: string, since: StreamPosition | undefined, done: (s: TopicSnapshot | GatewayError) => void): void {
    const owner = ownerOf(topic, this.mesh.count);
    if (this.inStep(topic)) return done(LOCAL);
    const id = ++this.nextId;
    const len = this.out.write(topic, 0, 'utf8');
    if (!this.mesh.write(owner, SNAPSHOT, id, this.out, len)) return done(unavailable('the owner worker of this topic is not keeping up'));
    this.snapshots.set(id, { topic, since, done });
  }

  private answerSnapshot(from: number, id: number, topic: string): void {
    const state = this.hub.acquire(topic);
    const reply = packr.pack([state.seq, state.epoch]);
    this.hub.releaseIfIdle(state);
    this.mesh.write(from, SNAPSHOT_REPLY, id, reply, reply.length);
  }

  private snapshotTaken(id: number, bytes: Buffer): void {
    const asked = this.snapshots.get(id);
    if (asked === undefined) return;
    this.snapshots.delete(id);
    const [seq, epoch] = unpackr.unpack(bytes) as [number, string];
    const state = this.hub.adopt(asked.topic, seq, epoch);
    this.step(state.name);
    const since = asked.since;
    // The hub was not in step: it holds no history to replay from, unless there is nothing to replay.
    asked.done({ seq, epoch, replay: since !== undefined && since.epoch === epoch && since.seq === seq ? [] : null });
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

  /** The owner's numbered message to every other worker (`skip`: none, or one that already has it). */
  private sendNumbered(topic: string, seq: number, epoch: string, ts: number, origin: string, source: PublishSource, payload: Payload, id: number, skip: number): void {
    const count = this.mesh.count;
    if (count === 1) return;
    const len = this.encode(topic, seq, epoch, ts, origin, source, payload);
    for (let to = 0; to < count; to++) {
      if (to === this.mesh.index || to === skip) continue;
      if (this.mesh.write(to, DELIVER, id, this.out, len)) {
        this.stats.brokerPublished++;
        this.stats.brokerBytesOut += len;
      }
    }
  }

  private readonly receive = (from: number, kind: number, id: number, bytes: Buffer, start: number, len: number): void => {
    this.stats.brokerReceived++;
    this.stats.brokerBytesIn += len;
    // Copied out of shared memory first: the peer may reuse the space once the record is consumed, and
    // the hub keeps views of the payload only while it delivers.
    if (len > this.scratch.length) this.scratch = Buffer.allocUnsafe(len);
    bytes.copy(this.scratch, 0, start, start + len);
    if (kind === SNAPSHOT) return this.answerSnapshot(from, id, this.scratch.toString('utf8', 0, len));
    if (kind === SNAPSHOT_REPLY) return this.snapshotTaken(id, this.scratch.subarray(0, len));
    const env = this.envelope.read(this.cursor.reset(this.scratch));
    const payload = this.payload.setRaw(env.buf, env.dataStart, env.dataEnd, env.json);
    const now = performance.now();
    if (kind === PUBLISH) {
      const seq = this.hub.deliver(env.topic, payload, 'broker', now);
      this.sendNumbered(env.topic, seq, this.hub.lastEpoch, env.ts, env.origin, env.source, payload, id, -1);
      return;
    }
    const own = env.origin === this.nodeId;
    const seq = this.hub.deliver(env.topic, payload, own ? env.source : 'broker', now, env.seq, env.epoch);
    this.step(env.topic);
    if (own && id !== 0) this.settle(from, id, seq);
  };

  /** Settles request `id` to `owner` with `seq`; earlier ones still waiting were lost on the way (full ring). */
  private settle(owner: number, id: number, seq: number): void {
    const queue = this.waiting[owner] as Waiting[];
    while (queue.length > 0 && (queue[0] as Waiting).id <= id) {
      const w = queue.shift() as Waiting;
      this.pending--;
      w.resolve(w.id === id ? seq : unavailable('the owner worker of this topic did not keep up'));
    }
  }

  /** Worker `index` was replaced: what it had not numbered is lost, as with a node that restarted. */
  peerReplaced(index: number): void {
    // Its topics start over with a new epoch: take their position from the new owner again.
    for (const topic of this.stepped) if (ownerOf(topic, this.mesh.count) === index) this.stepped.delete(topic);
    for (const [id, asked] of this.snapshots) {
      if (ownerOf(asked.topic, this.mesh.count) !== index) continue;
      this.snapshots.delete(id);
      asked.done(unavailable('the owner worker of this topic restarted'));
    }
    const queue = this.waiting[index] as Waiting[];
    for (const w of queue.splice(0)) {
      this.pending--;
      w.resolve(unavailable('the owner worker of this topic restarted'));
    }
  }

  async close(): Promise<void> {
    this.up = false;
    this.stats.brokerUp = false;
    this.mesh.close();
    this.channel.close();
    for (let i = 0; i < this.waiting.length; i++) this.peerReplaced(i);
    for (const asked of this.snapshots.values()) asked.done(unavailable('closing'));
    this.snapshots.clear();
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
