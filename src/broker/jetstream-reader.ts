import type { HistoryMessage } from '../protocol/codec';
import type { GatewayError } from '../protocol/codes';
import type { StreamPosition } from '../protocol/commands';
import { unpackr } from '../protocol/msgpack';
import { unrecoverable } from '../pubsub/history-read';
import { newEpoch } from '../pubsub/topic-state';
import type { HistoryPage } from './broker';
import { Envelope, MsgpackCursor } from './envelope';
import { type StoredEnvelope, encodeMarker, envelopesOf, positionOf } from './jetstream-batch';
import { UNAVAILABLE } from './jetstream-lanes';
import { Conflict, type StoredMessage, type TopicStore } from './jetstream-store';
import { absoluteNow } from './receiver';

/** How often a marker is tried when other nodes keep storing the topic's first message meanwhile. */
const MARKER_ATTEMPTS = 8;

/** Reads a topic's position and recent messages back from the stream (snapshots, refills, history). */
export class TopicReader {
  private readonly cursor = new MsgpackCursor();
  private readonly peek = new Envelope();

  constructor(
    /** This node's id, written into the markers it stores. */
    private readonly origin: string,
    /** --max-depth: stored data is checked like a client's before anything frames or decodes it. */
    private readonly maxDepth: number,
    /** Stored messages kept per topic: no read goes back further. */
    private readonly perTopic: number,
  ) {}

  /** The topic's last stored message; a topic with none gets a marker, so every node numbers it in one epoch. */
  async lastOrMarker(store: TopicStore, topic: string): Promise<StoredMessage> {
    for (let attempt = 0; attempt < MARKER_ATTEMPTS; attempt++) {
      const last = await store.last(topic);
      if (last !== null) return last;
      const marker = encodeMarker(topic, newEpoch(), this.origin);
      try {
        const ack = await store.append(topic, marker, 0, null);
        return { streamSeq: ack.seq, body: marker, previous: 0 };
      } catch (e) {
        if (!(e instanceof Conflict)) throw e;
      }
    }
    throw UNAVAILABLE;
  }

  /** The envelopes needed after `from`: read back from the last stored message until one starts at or before `from` + 1. */
  async read(store: TopicStore, last: StoredMessage, from: number): Promise<StoredEnvelope[]> {
    const first = (m: StoredMessage): number => this.peek.read(this.cursor.reset(m.body)).seq;
    const messages = await store.back(last, (m) => first(m) <= from + 1, this.perTopic);
    return envelopesOf(messages, this.maxDepth);
  }

  /**
   * Up to `limit` retained messages of the topic: the newest, or with `since` the first after it; only
   * within the topic's history size and TTL (`limits`). Throws when the store does not answer.
   */
  async history(store: TopicStore, topic: string, limit: number, since: StreamPosition | undefined, limits: { readonly size: number; readonly ttlMs: number }): Promise<HistoryPage | GatewayError> {
    const last = await this.lastOrMarker(store, topic);
    const pos = positionOf(last);
    if (since !== undefined && since.epoch !== pos.epoch) return unrecoverable(since);
    const from = Math.max(since === undefined ? pos.seq - limit : since.seq, pos.seq - limits.size);
    const oldest = absoluteNow() - limits.ttlMs;
    const messages: HistoryMessage[] = [];
    for (const e of await this.read(store, last, from)) {
      if (e.epoch !== pos.epoch || e.seq <= from || e.ts < oldest) continue;
      if (messages.length < limit) messages.push({ s: e.seq, d: e.json ? JSON.parse(e.data.toString('utf8')) : unpackr.unpack(e.data) });
    }
    return { seq: pos.seq, epoch: pos.epoch, messages };
  }
}
