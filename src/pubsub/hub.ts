import { performance } from 'node:perf_hooks';
import type { CodecName } from '../protocol/codec';
import { DeliveryEncoder } from '../protocol/delivery';
import type { Payload } from '../protocol/payload';
import type { FixedHistogram } from '../metrics/histogram';
import type { PublishSource, Stats } from '../metrics/stats';
import { HistoryBudget, type HistoryFrames, type HistoryLimits, TopicHistory } from './history';
import { TopicState, newEpoch } from './topic-state';

const TIME_ORIGIN = performance.timeOrigin;

/** The native fan-out: one call hands a frame to every subscriber of a uWS topic. */
export interface Fanout {
  publish(key: string, frame: Uint8Array, binary: boolean): void;
}

export interface HubOptions {
  readonly history: HistoryLimits & { readonly maxBytes: number };
}

/** Interest changes, so a broker subscribes upstream only to topics with local subscribers. */
export interface InterestListener {
  interestAdded(topic: string): void;
  interestRemoved(topic: string): void;
}

/**
 * Topic registry and fan-out. A publish is encoded once per codec that has subscribers, into reused
 * buffers, and handed to uWS per codec; nothing here runs per subscriber.
 */
export class Hub {
  private readonly topics = new Map<string, TopicState>();
  private readonly encoder = new DeliveryEncoder();
  /** Handed to history.append, refilled per publish (a literal would be an object per publish). */
  private readonly frames: { -readonly [K in keyof HistoryFrames]: HistoryFrames[K] } = { jsonFrame: null, packFrame: null };
  private readonly budget: HistoryBudget;
  private interest: InterestListener | null = null;
  private readonly sweeper: NodeJS.Timeout | null;

  constructor(
    private readonly fanout: Fanout,
    private readonly stats: Stats,
    private readonly fanoutDuration: FixedHistogram,
    private readonly options: HubOptions,
  ) {
    this.budget = new HistoryBudget(options.history.maxBytes);
    this.sweeper = options.history.size > 0 ? setInterval(() => this.sweep(), 1000).unref() : null;
  }

  setInterestListener(listener: InterestListener): void {
    this.interest = listener;
  }

  get(topic: string): TopicState | undefined {
    return this.topics.get(topic);
  }

  /** The state of `topic`, created (with a fresh epoch) if the node has none. */
  acquire(topic: string): TopicState {
    let state = this.topics.get(topic);
    if (state === undefined) {
      const history = this.options.history.size > 0 ? new TopicHistory(this.options.history, this.budget) : null;
      state = new TopicState(topic, newEpoch(), history);
      this.topics.set(topic, state);
    }
    return state;
  }

  /** Counts a subscriber the caller has just subscribed to `state.key(codec)`. */
  addSubscriber(topic: string, codec: CodecName): TopicState {
    const state = this.acquire(topic);
    if (state.subscribers === 0) {
      this.stats.topics++;
      this.interest?.interestAdded(topic);
    }
    if (codec === 'json') state.jsonSubs++;
    else state.packSubs++;
    this.stats.subscriptions++;
    return state;
  }

  removeSubscriber(topic: string, codec: CodecName): void {
    const state = this.topics.get(topic);
    if (state === undefined) return;
    if (codec === 'json') state.jsonSubs--;
    else state.packSubs--;
    this.stats.subscriptions--;
    if (state.subscribers === 0) {
      this.stats.topics--;
      this.interest?.interestRemoved(topic);
      if (state.idle) this.topics.delete(topic);
    }
  }

  /**
   * Fans one message out to local subscribers and returns its sequence. `seq` 0 means this node assigns
   * the next one (single node); a broker that orders messages cluster-wide passes its own with `epoch`.
   * `startedAt` is performance.now() when the publish entered the node.
   */
  deliver(topic: string, payload: Payload, source: PublishSource, startedAt: number, seq = 0, epoch?: string): number {
    const state = this.acquire(topic);
    if (seq === 0) seq = ++state.seq;
    else {
      if (epoch !== undefined && epoch !== state.epoch) {
        state.history?.clear();
        state.epoch = epoch;
      } else if (seq !== state.seq + 1) {
        // Messages this node never received (no interest, or a broker outage): history must not claim them.
        state.history?.clear();
      }
      state.seq = seq;
    }
    const history = state.history;
    let jsonFrame: Uint8Array | null = null;
    let packFrame: Uint8Array | null = null;
    if (state.jsonSubs > 0) {
      jsonFrame = payload.jsonFrame(this.encoder, topic, seq);
      this.fanout.publish(state.jsonKey, jsonFrame, false);
      this.stats.sentBytes += jsonFrame.length * state.jsonSubs;
    }
    // With no subscribers at all, history still needs one encoding: the data's own when it is JSON
    // (no conversion), else msgpack.
    if (history !== null && state.subscribers === 0 && payload.isJson) jsonFrame = payload.jsonFrame(this.encoder, topic, seq);
    if (state.packSubs > 0 || (history !== null && jsonFrame === null)) {
      packFrame = payload.msgpackFrame(this.encoder, topic, seq);
      if (state.packSubs > 0) {
        this.fanout.publish(state.packKey, packFrame, true);
        this.stats.sentBytes += packFrame.length * state.packSubs;
      }
    }
    if (history !== null) {
      const frames = this.frames;
      frames.jsonFrame = jsonFrame;
      frames.packFrame = packFrame;
      // Wall-clock ms from the publish's own monotonic stamp: Date.now() would box a number per publish.
      history.append(seq, TIME_ORIGIN + startedAt, frames);
      frames.jsonFrame = frames.packFrame = null;
      this.syncHistoryStats();
    }
    this.stats.deliveries += state.subscribers;
    this.stats.publishes[source]++;
    this.fanoutDuration.observe((performance.now() - startedAt) / 1000);
    if (state.idle) this.topics.delete(topic);
    return seq;
  }

  /**
   * Starts `topic` over with a fresh epoch and no history: for a broker that numbers on receipt and
   * cannot know what it missed while it held no interest.
   */
  restart(topic: string): void {
    const state = this.topics.get(topic);
    if (state === undefined) return;
    state.history?.clear();
    state.epoch = newEpoch();
    state.seq = 0;
    this.syncHistoryStats();
  }

  /**
   * Moves `topic` to a cluster-wide position taken at a cut of the broker stream (nothing before it is
   * still in flight to this node). History that would have a hole before it is dropped.
   */
  adopt(topic: string, seq: number, epoch: string): TopicState {
    const state = this.acquire(topic);
    if (epoch !== state.epoch || seq !== state.seq) {
      state.history?.clear();
      state.epoch = epoch;
      state.seq = seq;
      this.syncHistoryStats();
    }
    return state;
  }

  /** Re-encodes a retained frame into the other codec (history replay to a codec nobody had at publish). */
  get deliveryEncoder(): DeliveryEncoder {
    return this.encoder;
  }

  /** Drops expired history and the states left idle by it. */
  sweep(now = Date.now()): void {
    for (const state of this.topics.values()) {
      state.history?.evictExpired(now);
      if (state.idle) this.topics.delete(state.name);
    }
    this.syncHistoryStats();
  }

  private syncHistoryStats(): void {
    this.stats.historyEntries = this.budget.entries;
    this.stats.historyBytes = this.budget.used;
  }

  close(): void {
    if (this.sweeper !== null) clearInterval(this.sweeper);
    for (const state of this.topics.values()) state.history?.clear();
    this.topics.clear();
    this.syncHistoryStats();
  }
}
