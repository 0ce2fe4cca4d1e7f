import { performance } from 'node:perf_hooks';
import type { CodecName } from '../protocol/codec';
import { DeliveryEncoder, jsonDataStart, packDataStart } from '../protocol/delivery';
import { DeltaFrameEncoder } from '../protocol/delta-frame';
import type { Payload } from '../protocol/payload';
import { packr } from '../protocol/msgpack';
import type { FixedHistogram } from '../metrics/histogram';
import type { PublishSource, Stats } from '../metrics/stats';
import type { TopicRule, TopicRules } from '../rules/topic-rules';
import type { DeltaDelivery, DeltaSettings, DeltaTopic } from './delta';
import { FossilEncoder } from './fossil-encoder';
import { HistoryBudget, type HistoryFrames, TopicHistory } from './history';
import { LastMessage } from './last-message';
import { PositionMemory, type PositionLimits } from './positions';
import { TopicState, newEpoch } from './topic-state';

/** The native fan-out: one call hands a frame to every subscriber of a uWS topic. */
export interface Fanout {
  /** Whether any socket is subscribed to `key` (uWS's own answer). */
  publish(key: string, frame: Uint8Array, binary: boolean): boolean;
}

export interface HubOptions {
  /** Bytes of history across all topics. */
  readonly historyMaxBytes: number;
  readonly rules: TopicRules;
  readonly positions: PositionLimits;
  /** Delta delivery (topic rule `delta`); default: full every 10, at least 256 bytes. */
  readonly delta?: DeltaSettings;
}

/** How a subscriber receives frames: one of the wsgate codecs, the Pusher protocol, or Server-Sent Events. */
export type Wire = CodecName | 'pusher' | 'sse';

/** A wire format of another front door: frames a publish once for that topic's subscribers of it. */
export interface ExtraWire {
  /** Fans `payload` out to the topic's subscribers of this wire; returns the frame's bytes. */
  deliver(state: TopicState, payload: Payload): number;
  /** Fans a notice (join/leave) out to the topic's subscribers of this wire; whether any was reached. */
  notice(state: TopicState, notice: Notice): boolean;
}

/**
 * A front door whose connections cannot be subscribed natively (uWS topics reach WebSockets only): it
 * gets each message's JSON delivery frame, encoded once, and writes it to its own connections.
 */
export interface FrameWire {
  /** Writes `jsonFrame` (message `seq` of the topic) to the topic's subscribers of this wire; returns the bytes sent. */
  deliver(state: TopicState, seq: number, jsonFrame: Uint8Array): number;
  notice(state: TopicState, notice: Notice): boolean;
}

/** A message outside a topic's sequence: `{"op":"join"|"leave"|"reset","t":<topic>,"p":<entry or position>}`. */
export interface Notice {
  readonly op: string;
  readonly t: string;
  readonly p: unknown;
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
  /** The epoch of the topic the last deliver() numbered (an owner worker sends it with the sequence). */
  lastEpoch = '';
  private readonly encoder = new DeliveryEncoder();
  /** Handed to history.append, refilled per publish (a literal would be an object per publish). */
  private readonly frames: { -readonly [K in keyof HistoryFrames]: HistoryFrames[K] } = { jsonFrame: null, packFrame: null };
  private readonly budget: HistoryBudget;
  private readonly positions: PositionMemory;
  private readonly interest: InterestListener[] = [];
  private readonly sweeper: NodeJS.Timeout | null;
  private pusher: ExtraWire | null = null;
  private sse: FrameWire | null = null;
  /** Handed to DeltaTopic.deliver: what a delta publish needs besides the frames. */
  private readonly deltas: DeltaDelivery;

  constructor(
    private readonly fanout: Fanout,
    private readonly stats: Stats,
    private readonly fanoutDuration: FixedHistogram,
    private readonly options: HubOptions,
  ) {
    this.budget = new HistoryBudget(options.historyMaxBytes);
    this.positions = new PositionMemory(options.positions);
    this.deltas = { fanout, fossil: new FossilEncoder(), encoder: new DeltaFrameEncoder(), settings: options.delta ?? { fullEvery: 10, minBytes: 256 }, stats };
    this.sweeper = options.rules.anyRetention || options.positions.max > 0 ? setInterval(() => this.sweep(), 1000).unref() : null;
  }

  /** Adds a listener (the broker's interest table; webhook occupancy). */
  addInterestListener(listener: InterestListener): void {
    this.interest.push(listener);
  }

  /** The Pusher front door's wire format, set when Pusher apps are configured. */
  setPusherWire(wire: ExtraWire): void {
    this.pusher = wire;
  }

  /** The SSE front door's fan-out, set when the SSE door is on. */
  setSseWire(wire: FrameWire): void {
    this.sse = wire;
  }

  /** Every topic state this node holds (the Pusher API's channel listing). */
  entries(): IterableIterator<[string, TopicState]> {
    return this.topics.entries();
  }

  get(topic: string): TopicState | undefined {
    return this.topics.get(topic);
  }

  /** The rule of `topic`: the one on its state, resolved now only when the node holds no state for it. */
  ruleOf(topic: string): TopicRule {
    return this.topics.get(topic)?.rule ?? this.options.rules.resolve(topic);
  }

  /** The largest history size of any topic's rule. */
  get maxHistorySize(): number {
    return this.options.rules.maxHistorySize;
  }

  /** The state of `topic`, created if the node has none: at its remembered position, else with a fresh epoch. */
  acquire(topic: string): TopicState {
    let state = this.topics.get(topic);
    if (state === undefined) {
      const rule = this.options.rules.resolve(topic);
      const history = rule.historyLimits.size > 0 ? new TopicHistory(rule.historyLimits, this.budget) : null;
      const position = this.positions.take(topic, Date.now());
      state = new TopicState(topic, position?.epoch ?? newEpoch(), history, rule);
      if (position !== undefined) state.seq = position.seq;
      this.topics.set(topic, state);
      this.stats.rememberedPositions = this.positions.size;
    }
    return state;
  }

  /** Topics with at least one local subscriber, and how many. */
  *activeTopics(): IterableIterator<[topic: string, subscribers: number]> {
    for (const state of this.topics.values()) if (state.subscribers > 0) yield [state.name, state.subscribers];
  }

  /** Lets a state acquired only to be read go again (its position is remembered). */
  releaseIfIdle(state: TopicState): void {
    if (state.idle && this.topics.get(state.name) === state) this.retire(state);
  }

  /** Drops an idle state, keeping its position so the topic's numbering continues when it is used again. */
  private retire(state: TopicState): void {
    this.topics.delete(state.name);
    this.positions.remember(state.name, state.seq, state.epoch, Date.now());
    this.stats.rememberedPositions = this.positions.size;
  }

  /** Counts a subscriber the caller has just subscribed to `state.key(codec)`. */
  addSubscriber(topic: string, codec: Wire): TopicState {
    const state = this.acquire(topic);
    if (state.subscribers === 0) {
      this.stats.topics++;
      for (const l of this.interest) l.interestAdded(topic);
    }
    if (codec === 'json') state.jsonSubs++;
    else if (codec === 'msgpack') state.packSubs++;
    else if (codec === 'pusher') state.pusherSubs++;
    else state.sseSubs++;
    this.stats.subscriptions++;
    return state;
  }

  /** Uncounts a subscriber; returns the topic's rule (undefined when the node has no state for it). */
  removeSubscriber(topic: string, codec: Wire): TopicRule | undefined {
    const state = this.topics.get(topic);
    if (state === undefined) return undefined;
    if (codec === 'json') state.jsonSubs--;
    else if (codec === 'msgpack') state.packSubs--;
    else if (codec === 'pusher') state.pusherSubs--;
    else state.sseSubs--;
    this.stats.subscriptions--;
    if (state.subscribers === 0) {
      this.stats.topics--;
      for (const l of this.interest) l.interestRemoved(topic);
      if (state.idle) this.retire(state);
    }
    return state.rule;
  }

  /**
   * Fans one message out to local subscribers and returns its sequence. `seq` 0 means this node assigns
   * the next one (single node); a broker that orders messages cluster-wide passes its own with `epoch`.
   * `startedAt` is performance.now() when the publish entered the node if its fan-out is timed (one
   * publish in 16 from clients, see publishStart; every broker message), else 0.
   */
  deliver(topic: string, payload: Payload, source: PublishSource, startedAt: number, seq = 0, epoch?: string): number {
    const state = this.acquire(topic);
    if (seq === 0) seq = ++state.seq;
    else {
      if (epoch !== undefined && epoch !== state.epoch) {
        state.history?.clear();
        state.delta?.reset();
        state.epoch = epoch;
        this.epochChanged(state, seq - 1);
      } else if (seq !== state.seq + 1) {
        // Messages this node never received (no interest, or a broker outage): history must not claim them.
        state.history?.clear();
      }
      state.seq = seq;
    }
    this.lastEpoch = state.epoch;
    const history = state.history;
    let jsonFrame: Uint8Array | null = null;
    let packFrame: Uint8Array | null = null;
    if (state.jsonSubs > 0) {
      jsonFrame = payload.jsonFrame(this.encoder, topic, seq);
      this.fanout.publish(state.jsonKey, jsonFrame, false);
      this.stats.sentBytes += jsonFrame.length * state.jsonSubs;
    }
    // With no wsgate subscribers (none at all, or only other doors'), history still needs one encoding:
    // the data's own when it is JSON (no conversion), else msgpack.
    if (history !== null && jsonFrame === null && state.packSubs === 0 && payload.isJson) jsonFrame = payload.jsonFrame(this.encoder, topic, seq);
    if (state.packSubs > 0 || (history !== null && jsonFrame === null)) {
      packFrame = payload.msgpackFrame(this.encoder, topic, seq);
      if (state.packSubs > 0) {
        this.fanout.publish(state.packKey, packFrame, true);
        this.stats.sentBytes += packFrame.length * state.packSubs;
      }
    }
    if (state.pusherSubs > 0 && this.pusher !== null) this.stats.sentBytes += this.pusher.deliver(state, payload) * state.pusherSubs;
    // SSE streams are written one by one (no native fan-out for HTTP responses), from the one JSON frame.
    if (state.sseSubs > 0 && this.sse !== null) this.stats.sentBytes += this.sse.deliver(state, seq, (jsonFrame ??= payload.jsonFrame(this.encoder, topic, seq)));
    if (state.delta !== null) this.deliverDeltas(state, seq, jsonFrame, packFrame);
    if (history !== null) {
      const frames = this.frames;
      frames.jsonFrame = jsonFrame;
      frames.packFrame = packFrame;
      // Date.now(): one heap number (16 B), where performance.now() costs 88 B in unoptimized code.
      history.append(seq, Date.now(), frames);
      frames.jsonFrame = frames.packFrame = null;
      this.syncHistoryStats();
    }
    if (state.rule.lastMessage) this.keepLast(state, seq, payload.msgpack());
    this.stats.deliveries += state.subscribers;
    this.stats.publishes[source]++;
    if (startedAt > 0) this.fanoutDuration.observe((performance.now() - startedAt) / 1000);
    if (state.idle) this.retire(state);
    return seq;
  }

  /** The delta subscriptions' share of a publish (topic rule `delta`): their frames replace the full ones in sentBytes. */
  private deliverDeltas(state: TopicState, seq: number, jsonFrame: Uint8Array | null, packFrame: Uint8Array | null): void {
    const stats = this.stats;
    const saved = stats.deltaSavedBytes;
    const name = state.name;
    (state.delta as DeltaTopic).deliver(this.deltas, name, seq, jsonFrame, jsonDataStart(name, seq), packFrame, packDataStart(name, seq));
    stats.sentBytes -= stats.deltaSavedBytes - saved;
  }

  /**
   * Fans out a notice outside the topic's sequence (join/leave): encoded once per codec that has
   * subscribers, handed to uWS like a delivery. Whether any socket was subscribed (a joiner counted in
   * the state is not subscribed yet).
   */
  notice(topic: string, notice: Notice): boolean {
    const state = this.topics.get(topic);
    if (state === undefined || state.subscribers === 0) return false;
    let reached = false;
    if (state.jsonSubs > 0) {
      const frame = Buffer.from(JSON.stringify(notice));
      reached = this.fanout.publish(state.jsonKey, frame, false);
      this.stats.sentBytes += frame.length * state.jsonSubs;
    }
    if (state.packSubs > 0) {
      const frame = packr.pack(notice);
      reached = this.fanout.publish(state.packKey, frame, true) || reached;
      this.stats.sentBytes += frame.length * state.packSubs;
    }
    if (state.pusherSubs > 0 && this.pusher !== null) reached = this.pusher.notice(state, notice) || reached;
    if (state.sseSubs > 0 && this.sse !== null) reached = this.sse.notice(state, notice) || reached;
    return reached;
  }

  /** Keeps `data` (msgpack, copied) as the topic's latest message; dropped when the budget is full. */
  keepLast(state: TopicState, seq: number, data: Uint8Array): void {
    const last = state.last ?? new LastMessage();
    state.last = last.keep(seq, data, Date.now(), this.budget) ? last : null;
    this.syncHistoryStats();
  }

  private dropLast(state: TopicState): void {
    state.last?.release(this.budget);
    state.last = null;
  }

  /**
   * Starts `topic` over with a fresh epoch and no history: for a broker that numbers on receipt and
   * cannot know what it missed while it held no interest.
   */
  restart(topic: string): void {
    const state = this.topics.get(topic);
    if (state === undefined) return;
    state.history?.clear();
    state.delta?.reset();
    this.dropLast(state);
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
      state.delta?.reset();
      this.dropLast(state);
      if (epoch !== state.epoch) {
        state.epoch = epoch;
        this.epochChanged(state, seq);
      }
      state.seq = seq;
      this.syncHistoryStats();
    }
    return state;
  }

  /**
   * The topic's stream started over under live subscribers (the broker lost its state, the topic was
   * re-created): they are told before the new epoch's first delivery, so that a client keeping positions
   * knows the next `s` is not a repeat (`{"op":"reset","t":…,"p":{"epoch":…,"seq":…}}`: the next message
   * has `s` seq+1). Only on an epoch change, never per message.
   */
  private epochChanged(state: TopicState, seq: number): void {
    if (state.subscribers === 0) return;
    this.stats.epochResets++;
    this.notice(state.name, { op: 'reset', t: state.name, p: { epoch: state.epoch, seq } });
  }

  /** Re-encodes a retained frame into the other codec (history replay to a codec nobody had at publish). */
  get deliveryEncoder(): DeliveryEncoder {
    return this.encoder;
  }

  /** Drops expired history (retiring the states left idle by it) and expired positions. */
  sweep(now = Date.now()): void {
    if (this.options.rules.anyRetention) {
      const lastCutoff = now - this.options.positions.ttlMs;
      for (const state of this.topics.values()) {
        state.history?.evictExpired(now);
        // The latest message is kept as long as the topic's position would be.
        if (state.last !== null && state.last.at < lastCutoff) this.dropLast(state);
        if (state.idle) this.retire(state);
      }
      this.syncHistoryStats();
    }
    this.positions.evictExpired(now);
    this.stats.rememberedPositions = this.positions.size;
  }

  private syncHistoryStats(): void {
    this.stats.historyEntries = this.budget.entries;
    this.stats.historyBytes = this.budget.used;
  }

  close(): void {
    if (this.sweeper !== null) clearInterval(this.sweeper);
    for (const state of this.topics.values()) {
      state.history?.clear();
      this.dropLast(state);
    }
    this.topics.clear();
    this.positions.clear();
    this.stats.rememberedPositions = 0;
    this.syncHistoryStats();
  }
}
