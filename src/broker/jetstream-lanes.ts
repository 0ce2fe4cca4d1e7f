import type { PublishSource, Stats } from '../metrics/stats';
import { ErrorCode, GatewayError } from '../protocol/codes';
import type { Payload } from '../protocol/payload';
import { newEpoch } from '../pubsub/topic-state';
import type { PublishOutcome } from './broker';
import { type EnvelopeData, encodeEnvelope } from './envelope';
import { type Position, positionOf } from './jetstream-batch';
import { Conflict, type TopicStore } from './jetstream-store';

/** Envelopes committed in one stored message at most (a group stays far below NATS's 1 MB max_payload). */
const GROUP_MAX = 256;
const GROUP_MAX_BYTES = 256 * 1024;
/** Conflicting writers (other nodes on the same topic) make a group re-read the position and retry this often. */
const MAX_ATTEMPTS = 16;
/** Topics whose position this node remembers for publishing without a read first (least recently used dropped). */
const POSITIONS_MAX = 10_000;

export const UNAVAILABLE = new GatewayError(ErrorCode.Unavailable, 'JetStream is unreachable; retry later');

/** A publish waiting for its group: the data copied out of the caller's reused payload. */
class Pending implements EnvelopeData {
  constructor(
    readonly data: Buffer,
    readonly isJson: boolean,
    readonly ts: number,
    readonly source: PublishSource,
    readonly msgId: string | null,
    readonly resolve: (o: PublishOutcome) => void,
  ) {}

  dataLength(): number {
    return this.data.length;
  }

  copyData(dst: Buffer, p: number): number {
    return p + this.data.copy(dst, p);
  }
}

/**
 * Numbers and stores a node's publishes, per topic, in groups ("group commit"): the topic's publishes
 * of one event-loop turn, and those arriving while a group is in flight, leave as one stored message
 * whose envelopes carry the next seqs. The store takes it only if the topic's last stored message is
 * still the one this node numbered from (Nats-Expected-Last-Subject-Sequence), so numbering is
 * cluster-wide without a sequencer; a writer that lost the race re-reads the position and renumbers.
 * One group per topic is in flight at a time (the next one's expected sequence is this one's ack), so
 * a topic's publishes from this node stay in order; a keyed publish (idempotencyKey) goes alone, with
 * its key as Nats-Msg-Id.
 */
export class PublishLanes {
  private readonly queues = new Map<string, Pending[]>();
  private readonly busy = new Set<string>();
  /** Known positions (least recently used first), from acks and the live stream. */
  private readonly positions = new Map<string, Position>();
  private readonly scheduled = new Set<string>();
  private flushQueued = false;
  private inflight = 0;

  constructor(
    private readonly store: () => TopicStore | null,
    private readonly origin: string,
    private readonly maxPending: number,
    private readonly stats: Stats,
    private readonly onRepeat: () => void,
  ) {}

  /** Queues a publish; the outcome settles once its group is stored (or cannot be). */
  publish(topic: string, payload: Payload, source: PublishSource, ts: number, msgId: string | null): PublishOutcome | Promise<PublishOutcome> {
    if (this.store() === null) {
      this.stats.brokerFailures++;
      return UNAVAILABLE;
    }
    if (this.inflight >= this.maxPending) {
      this.stats.brokerFailures++;
      return new GatewayError(ErrorCode.Unavailable, 'too many publishes waiting for JetStream; retry later');
    }
    const data = Buffer.allocUnsafe(payload.dataLength());
    payload.copyData(data, 0);
    this.inflight++;
    return new Promise<PublishOutcome>((resolve) => {
      let q = this.queues.get(topic);
      if (q === undefined) this.queues.set(topic, (q = []));
      q.push(new Pending(data, payload.isJson, ts, source, msgId, resolve));
      if (!this.busy.has(topic)) this.schedule(topic);
    });
  }

  /** What the live stream or a read says about a topic (kept if newer than what this node knows). */
  learn(topic: string, p: Position): void {
    const known = this.positions.get(topic);
    if (known !== undefined && known.streamSeq >= p.streamSeq) return;
    this.positions.delete(topic);
    this.positions.set(topic, p);
    if (this.positions.size > POSITIONS_MAX) for (const oldest of this.positions.keys()) return void this.positions.delete(oldest);
  }

  /** Forgets every position (the store may have been lost: read again before numbering). */
  forget(): void {
    this.positions.clear();
  }

  /** Settles every waiting publish with `unavailable` (shutdown). */
  close(): void {
    for (const q of this.queues.values()) for (const p of q.splice(0)) this.settle(p, UNAVAILABLE);
  }

  /** Groups leave at the end of the turn, so a turn's publishes to a topic share one stored message. */
  private schedule(topic: string): void {
    this.scheduled.add(topic);
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(() => {
      this.flushQueued = false;
      for (const t of this.scheduled) void this.drain(t);
      this.scheduled.clear();
    });
  }

  private async drain(topic: string): Promise<void> {
    if (this.busy.has(topic)) return;
    this.busy.add(topic);
    try {
      for (let q = this.queues.get(topic); q !== undefined && q.length > 0; q = this.queues.get(topic)) await this.commit(topic, takeGroup(q));
    } finally {
      this.busy.delete(topic);
      if (this.queues.get(topic)?.length === 0) this.queues.delete(topic);
    }
  }

  /** Stores one group: numbered from the known position, renumbered after each lost race. */
  private async commit(topic: string, group: Pending[]): Promise<void> {
    const msgId = group.length === 1 ? (group[0] as Pending).msgId : null;
    try {
      let pos = this.positions.get(topic) ?? (await this.read(topic));
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const store = this.store();
        if (store === null) break;
        const epoch = pos.streamSeq === 0 ? newEpoch() : pos.epoch;
        const body = encodeGroup(topic, pos.seq, epoch, this.origin, group);
        try {
          const ack = await store.append(topic, body, pos.streamSeq, msgId);
          if (ack.duplicate) return this.settleAll(group, await this.repeatOf(store, ack.seq));
          this.stats.brokerPublished += group.length;
          this.stats.brokerBytesOut += body.length;
          this.learn(topic, { streamSeq: ack.seq, seq: pos.seq + group.length, epoch });
          group.forEach((p, i) => this.settle(p, pos.seq + 1 + i));
          return;
        } catch (e) {
          if (!(e instanceof Conflict)) throw e;
          pos = await this.read(topic);
        }
      }
      this.settleAll(group, UNAVAILABLE);
    } catch {
      // Timed out or refused: the group may or may not be stored, so the known position is no longer trusted.
      this.positions.delete(topic);
      this.settleAll(group, UNAVAILABLE);
    }
  }

  /** The topic's position read from the store (an empty topic: stream seq 0, numbering starts at 1). */
  private async read(topic: string): Promise<Position> {
    const store = this.store();
    if (store === null) throw UNAVAILABLE;
    const last = await store.last(topic);
    const pos = last === null ? { streamSeq: 0, seq: 0, epoch: '' } : positionOf(last);
    if (last !== null) this.learn(topic, pos);
    return pos;
  }

  /** A keyed publish repeated within the window: the seq its first publish got, read back from the store. */
  private async repeatOf(store: TopicStore, streamSeq: number): Promise<PublishOutcome> {
    this.onRepeat();
    const first = await store.at(streamSeq);
    if (first === null) return new GatewayError(ErrorCode.Unavailable, 'already published with this idempotencyKey; its seq is no longer retained');
    return positionOf(first).seq;
  }

  private settleAll(group: readonly Pending[], o: PublishOutcome): void {
    if (o instanceof GatewayError) this.stats.brokerFailures += group.length;
    for (const p of group) this.settle(p, o);
  }

  private settle(p: Pending, o: PublishOutcome): void {
    this.inflight--;
    p.resolve(o);
  }
}

/** The next group off the queue: a keyed publish alone; else up to the first keyed one, within the bounds. */
function takeGroup(q: Pending[]): Pending[] {
  if ((q[0] as Pending).msgId !== null) return q.splice(0, 1);
  let n = 0;
  let bytes = 0;
  while (n < q.length && n < GROUP_MAX && (q[n] as Pending).msgId === null && (n === 0 || bytes + (q[n] as Pending).data.length <= GROUP_MAX_BYTES)) {
    bytes += (q[n] as Pending).data.length;
    n++;
  }
  return q.splice(0, n);
}

function encodeGroup(topic: string, after: number, epoch: string, origin: string, group: readonly Pending[]): Buffer {
  const parts = group.map((p, i) => encodeEnvelope(topic, after + 1 + i, epoch, p.ts, origin, p.source, p));
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
}
