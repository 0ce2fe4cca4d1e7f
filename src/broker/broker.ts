import type { GatewayError } from '../protocol/codes';
import type { Payload } from '../protocol/payload';
import type { PublishSource } from '../metrics/stats';
import type { StreamPosition } from '../protocol/commands';
import type { HistoryMessage } from '../protocol/codec';
import type { ControlTransport } from '../cluster/control-bus';

/** A topic's position and retained messages, oldest first, as a history request returns them. */
export interface HistoryPage {
  readonly seq: number;
  readonly epoch: string;
  readonly messages: readonly HistoryMessage[];
}

/** A publish's outcome: the sequence it got, or why it could not be taken. */
export type PublishOutcome = number | GatewayError;

/** One retained message served from the broker's history or kept as a topic's latest, valid during the callback. */
export interface RetainedMessage {
  readonly seq: number;
  /** The data in the format it was published in: JSON text when `json`, else msgpack. */
  readonly data: Buffer;
  readonly json: boolean;
}

/**
 * A topic's cluster-wide position, taken at a cut of the broker's live stream: every message up to
 * `seq` has reached this node's hub already or never will, every later one arrives live.
 */
export interface TopicSnapshot {
  readonly seq: number;
  readonly epoch: string;
  /** With `since`: the messages after it up to `seq`, in order; null when they cannot all be served. */
  readonly replay: readonly RetainedMessage[] | null;
}

/**
 * Carries publishes to every node's Hub (this node's included). The memory broker is the embedded
 * single-node default; cluster brokers (NATS, Redis) implement the same contract.
 */
export interface Broker {
  readonly kind: string;
  start(): Promise<void>;
  /** Whether publishes can be taken now (readiness). */
  ready(): boolean;
  /**
   * Publishes `payload` to `topic`. Synchronous brokers return the outcome directly so the hot path
   * allocates no promise. `payload` is only valid during the call. `quiet`: the caller needs only a
   * refusal, not the sequence (a socket `pub` without id); a broker may then answer 0 once the publish
   * is on its way to be numbered.
   */
  publish(topic: string, payload: Payload, source: PublishSource, startedAt: number, quiet?: boolean): PublishOutcome | Promise<PublishOutcome>;
  close(): Promise<void>;
  /**
   * Only on brokers whose subscriptions take effect asynchronously and that do not snapshot: null when
   * the node's broker subscription to `topic` is live, else a promise that settles once it is (or
   * cannot be). A `sub` is answered only then, so a publish on another node after the `ok` reaches it.
   */
  whenLive?(topic: string): Promise<void> | null;
  /**
   * Only on brokers that number topics cluster-wide. Whether a new subscriber of `topic` can be served
   * from the local state (the node holds live interest in it and is in step with the broker).
   */
  inStep?(topic: string): boolean;
  /**
   * Only on brokers that number topics cluster-wide. Brings the local topic state to the broker's position
   * and calls `done` synchronously at the cut (see TopicSnapshot), so the caller can reply, replay and
   * subscribe with no gap and no duplicate. The caller has already added its subscriber (interest).
   */
  snapshot?(topic: string, since: StreamPosition | undefined, done: (s: TopicSnapshot | GatewayError) => void): void;
  /**
   * Only on brokers that keep history cluster-wide: up to `limit` retained messages of `topic`, the
   * newest ones, or (with `since`) the first ones after it. Others serve history from the node's hub.
   */
  history?(topic: string, limit: number, since: StreamPosition | undefined): Promise<HistoryPage | GatewayError>;
  /** Only on cluster brokers: the channel for control messages between nodes (see ControlBus). */
  readonly control?: ControlTransport;
}
