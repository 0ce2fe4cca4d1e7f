import { performance } from 'node:perf_hooks';
import type { CodecName } from '../protocol/codec';
import type { DeltaFrameEncoder } from '../protocol/delta-frame';
import type { DeltaStats } from '../metrics/stats';
import type { FossilEncoder } from './fossil-encoder';

const EMPTY = Buffer.alloc(0);

/** The node-wide delta settings (--delta-full-every, --delta-min-bytes). */
export interface DeltaSettings {
  readonly fullEvery: number;
  readonly minBytes: number;
}

/** What the hub needs of a subscriber's socket to move it between uWS topics (a uWS WebSocket). */
export interface DeltaSocket {
  subscribe(key: string): boolean;
  unsubscribe(key: string): boolean;
}

/** The native fan-out (the hub's Fanout). */
interface Publish {
  publish(key: string, frame: Uint8Array, binary: boolean): boolean;
}

/** One publish's full frames and the node's delta machinery, handed to DeltaTopic.deliver. */
export interface DeltaDelivery {
  readonly fanout: Publish;
  readonly fossil: FossilEncoder;
  readonly encoder: DeltaFrameEncoder;
  readonly settings: DeltaSettings;
  readonly stats: DeltaStats;
}

/**
 * One codec's chain: the data bytes of the last message this node framed in that codec (the base the
 * next delta is computed against) and how many subscriptions take deltas in it.
 */
class Chain {
  /** The last full frame copied whole (a sub-range copy would make a view object per publish); the data is [baseStart, baseEnd). */
  private base: Buffer = EMPTY;
  private baseStart = 0;
  private baseEnd = 0;
  /** Sequence of the message in `base`; -1 when there is none (chain broken). */
  baseSeq = -1;
  /** Subscriptions on the delta key (promoted). */
  subs = 0;
  /** Subscriptions waiting for their first (full) delivery on the plain key. */
  pending = 0;

  constructor(
    /** The uWS topic of this codec's delta subscribers, and of its full deliveries. */
    readonly key: string,
    readonly plainKey: string,
    readonly binary: boolean,
  ) {}

  /**
   * Hands this publish to the chain's subscribers: a delta against the previous message when the chain
   * is contiguous, the message is not a full one (seq % fullEvery), the data is at least minBytes and
   * the delta frame is smaller than the full one; else the full frame. Then keeps the data as the base.
   */
  deliver(d: DeltaDelivery, topic: string, seq: number, frame: Uint8Array, start: number, end: number): void {
    if (this.subs > 0) {
      let out = frame;
      const { settings, stats } = d;
      if (this.baseSeq === seq - 1 && seq % settings.fullEvery !== 0 && end - start >= settings.minBytes) {
        const t0 = performance.now();
        const n = d.fossil.create(this.base, this.baseStart, this.baseEnd, frame, start, end);
        const delta = d.fossil.bytes;
        const encoded = this.binary ? d.encoder.msgpack(topic, seq, delta, n) : d.encoder.json(topic, seq, delta, n);
        stats.deltaComputed++;
        stats.deltaSeconds += (performance.now() - t0) / 1000;
        if (encoded.length < frame.length) out = encoded;
      }
      d.fanout.publish(this.key, out, this.binary);
      const n = this.subs;
      if (out === frame) stats.deltaDeliveries.full += n;
      else stats.deltaDeliveries.delta += n;
      stats.deltaSentBytes += out.length * n;
      stats.deltaSavedBytes += (frame.length - out.length) * n;
    }
    if (this.subs + this.pending > 0) this.keep(seq, frame, start, end);
    else this.drop();
  }

  /** No delta subscription of this codec left: the base goes (the next one starts with a full delivery anyway). */
  drop(): void {
    this.baseSeq = -1;
    if (this.base.length > 0) this.base = EMPTY;
  }

  private keep(seq: number, frame: Uint8Array, start: number, end: number): void {
    if (frame.length > this.base.length) this.base = Buffer.allocUnsafe(Math.max(frame.length, this.base.length * 2));
    this.base.set(frame, 0);
    this.baseStart = start;
    this.baseEnd = end;
    this.baseSeq = seq;
  }
}

/**
 * Delta delivery for one topic whose rule has `delta`. A subscription asking for deltas joins on the
 * plain (full) key and waits there for one delivery: that full message is its base. Right after that
 * publish it moves to the codec's delta key, whose subscribers all share one frame per publish (a delta,
 * or the full data at every fullEvery-th sequence, after a broken chain, under minBytes or when the
 * delta would not be smaller). So the work per publish is one delta per codec, whatever the subscriber
 * count; the only per-subscriber JS is the one move per subscription.
 */
export class DeltaTopic {
  readonly json: Chain;
  readonly pack: Chain;
  /** Every delta subscription by socket: its codec and whether it moved to the delta key. */
  private readonly members = new Map<DeltaSocket, { readonly codec: CodecName; promoted: boolean }>();
  private readonly waiting = new Set<DeltaSocket>();

  constructor(name: string, jsonKey: string, packKey: string) {
    // Upper case: never the same as the plain keys ('j ', 'm ', 'p '); a space never occurs in a topic.
    this.json = new Chain('J ' + name, jsonKey, false);
    this.pack = new Chain('M ' + name, packKey, true);
  }

  private chain(codec: CodecName): Chain {
    return codec === 'json' ? this.json : this.pack;
  }

  /** A delta subscription whose socket was just subscribed to its codec's plain key. */
  join(ws: DeltaSocket, codec: CodecName): void {
    if (this.members.has(ws)) return;
    this.members.set(ws, { codec, promoted: false });
    this.waiting.add(ws);
    this.chain(codec).pending++;
  }

  /** Ends a delta subscription (`closing`: the socket is going, uWS drops its keys itself). Whether it was one. */
  leave(ws: DeltaSocket, closing: boolean): boolean {
    const m = this.members.get(ws);
    if (m === undefined) return false;
    this.members.delete(ws);
    const chain = this.chain(m.codec);
    if (m.promoted) {
      chain.subs--;
      if (!closing) ws.unsubscribe(chain.key);
    } else {
      chain.pending--;
      this.waiting.delete(ws);
    }
    return true;
  }

  /** The topic's numbering restarted (new epoch): no delta may refer to a message before it. */
  reset(): void {
    this.json.baseSeq = this.pack.baseSeq = -1;
  }

  /**
   * Fans one publish out to the delta subscriptions, given the full frames the hub made (null for a
   * codec nobody takes) and the plain keys, then moves the waiting subscriptions onto the delta keys.
   */
  deliver(d: DeltaDelivery, topic: string, seq: number, jsonFrame: Uint8Array | null, jsonStart: number, packFrame: Uint8Array | null, packStart: number): void {
    if (jsonFrame !== null) this.json.deliver(d, topic, seq, jsonFrame, jsonStart, jsonFrame.length - 1);
    else this.json.drop();
    if (packFrame !== null) this.pack.deliver(d, topic, seq, packFrame, packStart, packFrame.length);
    else this.pack.drop();
    if (this.waiting.size > 0) this.promote(jsonFrame !== null, packFrame !== null);
  }

  /** Moves waiting subscriptions that just received a full frame of their codec onto the delta key. */
  private promote(json: boolean, pack: boolean): void {
    for (const ws of this.waiting) {
      const m = this.members.get(ws);
      if (m === undefined || (m.codec === 'json' ? !json : !pack)) continue;
      const chain = this.chain(m.codec);
      ws.unsubscribe(chain.plainKey);
      ws.subscribe(chain.key);
      m.promoted = true;
      chain.pending--;
      chain.subs++;
      this.waiting.delete(ws);
    }
  }
}
