import type { Broker, TopicSnapshot } from '../broker/broker';
import type { Config } from '../config/schema';
import type { TopicProxies } from '../hooks/hooks';
import type { SessionEvents } from '../hooks/session-events';
import type { Caller } from '../hooks/topic-proxies';
import type { Logger } from '../log';
import type { Stats } from '../metrics/stats';
import { CloseCode, ErrorCode, GatewayError } from '../protocol/codes';
import type { DeltaType, StreamPosition } from '../protocol/commands';
import type { Hub } from '../pubsub/hub';
import { type SendFrame, canRecover, replayAfter, replayRetained } from '../pubsub/replay';
import type { TopicState } from '../pubsub/topic-state';
import { contained, type FaultSink } from '../server/contain';
import type { Door } from './door';
import type { Presence } from './presence';
import { type Session, clientId } from './session';

/** A subscription request: a topic, the client's request id (if it wants an answer) and where it resumes from. */
export interface SubRequest {
  readonly topic: string;
  readonly id: number | undefined;
  readonly since: StreamPosition | undefined;
  /** Deltas against the previous message (topics whose rule has `delta`; sockets only). */
  readonly delta?: DeltaType;
}

/** A subscription's answer: the topic's position now, and with `since` whether every missed message follows. */
export interface Subscribed {
  readonly seq: number;
  readonly epoch: string;
  readonly recovered?: boolean;
}

/**
 * Receives a subscription's outcome. Called synchronously in the step that then replays (through the
 * door) and subscribes, so nothing published can fall between the answer, the replay and live deliveries.
 */
export type SubAnswer = (outcome: Subscribed | GatewayError) => void;

export interface SubscriptionDeps {
  readonly config: Config;
  readonly hub: Hub;
  readonly broker: Broker;
  readonly presence: Presence;
  readonly stats: Stats;
  readonly proxies: TopicProxies;
  readonly events: SessionEvents | null;
  readonly log: Logger;
  readonly fault: FaultSink;
}

/** Who a session is to the application (proxies, presence). */
export const caller = (s: Session): Caller => ({ client: clientId(s), user: s.grant.subject, info: s.grant.info });

const tooMany = (max: number, id: number | undefined) => new GatewayError(ErrorCode.TooManyTopics, `a connection may hold at most ${max} subscriptions`, id);

/**
 * The session's subscriptions, for every door: grant and subscribe proxy, the broker's cut, recovery
 * from history (or the broker's) with `since`, the latest message, presence and join webhooks.
 */
export class Subscriptions {
  private pending = 0;

  constructor(private readonly deps: SubscriptionDeps) {}

  /**
   * Subscribes; returns the refusal, or null when `answer` has been or will be called. Idempotent for
   * topics already held. `allowed`: grant and application already agreed.
   */
  subscribe<H>(door: Door<H>, h: H, s: Session, req: SubRequest, answer: SubAnswer, allowed = false): GatewayError | null {
    const { config, hub, broker, presence, proxies, events } = this.deps;
    const { topic, id, since } = req;
    if (!allowed && !s.grant.subscribe.allows(topic)) return new GatewayError(ErrorCode.Forbidden, 'token does not allow subscribing to this topic', id);
    if (req.delta !== undefined && !hub.ruleOf(topic).delta) return new GatewayError(ErrorCode.DeltaDisabled, 'this topic has no deltas (see the topic rules)', id);
    if (s.topics.has(topic)) {
      // Already receiving it live; a `since` still gets its answer and replay (clients drop the repeats by `s`).
      const snapshot = broker.snapshot;
      if (snapshot !== undefined && s.pendingSubs?.has(topic) === true) {
        // The first subscription still waits for the broker's cut: until then the node's state of the
        // topic (its epoch) is provisional, so this answer waits for a cut too (it comes after the first's).
        snapshot.call(broker, topic, since, (snap: TopicSnapshot | GatewayError) => void (s.closed || this.answerAt(door, h, s, req, snap, answer)));
        return null;
      }
      this.fromHistory(door, h, s, hub.acquire(topic), since, answer);
      return null;
    }
    if (s.topics.size >= config.maxTopicsPerConn) return tooMany(config.maxTopicsPerConn, id);
    const proxy = proxies.subscribe;
    if (!allowed && proxy !== null && proxy.applies(topic)) {
      if (s.topics.size + (s.pendingSubs?.size ?? 0) >= config.maxTopicsPerConn) return tooMany(config.maxTopicsPerConn, id);
      const asked = this.later(door, h, s, topic, (denied: GatewayError | null) => {
        const err = denied ?? this.subscribe(door, h, s, req, answer, true);
        if (err !== null) answer(err.withId(id));
      });
      void proxy.ask(caller(s), topic).then(asked);
      return null;
    }
    // Counted before the answer: a broker gaining interest may restart the topic's numbering.
    const state = hub.addSubscriber(topic, door.wire(s));
    s.topics.add(state.name); // the hub's string: not one copy of the name per connection
    if (state.rule.members) presence.joined(caller(s), topic, state.rule);
    if (state.rule.presence) events?.joined(s, topic);
    const snapshot = broker.snapshot;
    const needsLast = since === undefined && state.rule.lastMessage && state.last === null;
    if (snapshot !== undefined && (broker.inStep?.(topic) !== true || needsLast || (since !== undefined && !canRecover(state, since)))) {
      snapshot.call(broker, topic, since, this.later(door, h, s, topic, (snap: TopicSnapshot | GatewayError) => this.atCut(door, h, s, req, snap, answer)));
      return null;
    }
    const live = broker.whenLive?.(topic) ?? null;
    // Settles, never rejects: a broker that cannot confirm still leaves local fan-out to serve.
    if (live !== null) void live.then(this.later(door, h, s, topic, () => this.now(door, h, s, req, answer)));
    else this.now(door, h, s, req, answer);
    return null;
  }

  /** Ends a subscription (or forgets one still waiting: its answer is dropped); whether one was held. */
  unsubscribe<H>(door: Door<H>, h: H, s: Session, topic: string): boolean {
    s.pendingSubs?.delete(topic);
    if (!s.topics.delete(topic)) return false;
    this.left(door, h, s, topic, false);
    return true;
  }

  /** Ends live deliveries and uncounts a subscription the session no longer holds (`closing`: the connection is going). */
  left<H>(door: Door<H>, h: H, s: Session, topic: string, closing: boolean): void {
    const state = this.deps.hub.get(topic);
    if (state !== undefined) door.leave(h, s, state, closing);
    const rule = this.deps.hub.removeSubscriber(topic, door.wire(s));
    if (rule?.members) this.deps.presence.left(caller(s), topic, rule, closing);
    if (rule?.presence === true) this.deps.events?.left(s, topic);
  }

  /** Answer, replay from local history and subscribe in one synchronous step: no publish can fall between them. */
  private now<H>(door: Door<H>, h: H, s: Session, req: SubRequest, answer: SubAnswer): void {
    const state = this.deps.hub.acquire(req.topic);
    this.fromHistory(door, h, s, state, req.since, answer);
    door.join(h, s, state, req.delta !== undefined);
  }

  /**
   * Cluster brokers that number topics cluster-wide: the answer, replay and subscription wait for the
   * broker's snapshot and then happen in one synchronous step at its cut, so nothing falls between them.
   */
  private atCut<H>(door: Door<H>, h: H, s: Session, req: SubRequest, snap: TopicSnapshot | GatewayError, answer: SubAnswer): void {
    if (snap instanceof GatewayError) {
      // The broker cannot say where the topic is: serve from what this node knows (it keeps serving).
      this.deps.log.debug({ topic: req.topic, code: snap.code, reason: snap.reason }, 'sub without broker snapshot');
      return this.now(door, h, s, req, answer);
    }
    const state = this.answerAt(door, h, s, req, snap, answer);
    door.join(h, s, state, req.delta !== undefined);
  }

  /** The answer and replay at the broker's cut (from local history when the broker says to serve locally). */
  private answerAt<H>(door: Door<H>, h: H, s: Session, req: SubRequest, snap: TopicSnapshot | GatewayError, answer: SubAnswer): TopicState {
    const { hub } = this.deps;
    const state = hub.acquire(req.topic);
    if (snap instanceof GatewayError) {
      this.fromHistory(door, h, s, state, req.since, answer);
      return state;
    }
    const replay = snap.replay;
    this.answer(door, h, s, state, req.since, replay !== null, answer, (send) => replayRetained(req.topic, replay ?? [], s.codec.name, hub.deliveryEncoder, send));
    return state;
  }

  /** Answers from local history: the position, then (when recovered) what was retained after `since`. */
  private fromHistory<H>(door: Door<H>, h: H, s: Session, state: TopicState, since: StreamPosition | undefined, answer: SubAnswer): void {
    const recovered = since !== undefined && canRecover(state, since);
    const encoder = this.deps.hub.deliveryEncoder;
    this.answer(door, h, s, state, since, recovered, answer, (send) => replayAfter(state, (since as StreamPosition).seq, s.codec.name, encoder, send));
  }

  /** The answer, then the replay (with `since`) or the latest message (without, when the rule keeps it). */
  private answer<H>(door: Door<H>, h: H, s: Session, state: TopicState, since: StreamPosition | undefined, recovered: boolean, answer: SubAnswer, replay: (send: SendFrame) => number): void {
    const { stats, hub } = this.deps;
    if (since === undefined) {
      answer({ seq: state.seq, epoch: state.epoch });
      // Rule lastMessage: the current state at once, as an ordinary delivery, before live ones.
      const last = state.rule.lastMessage ? state.last : null;
      if (last !== null && !s.closed) {
        stats.lastMessageHits++;
        door.replay(h, s, (send) => replayRetained(state.name, [last], s.codec.name, hub.deliveryEncoder, send));
      }
      return;
    }
    stats.recoveries[recovered ? 'recovered' : 'gap']++;
    answer({ seq: state.seq, epoch: state.epoch, recovered });
    if (recovered && !s.closed) stats.replayed += door.replay(h, s, replay);
  }

  /**
   * Runs `step` later for a subscription that must wait (broker, subscribe proxy), unless the session
   * closed or the topic was unsubscribed or subscribed again meanwhile (that answer would be stale).
   */
  private later<H, T>(door: Door<H>, h: H, s: Session, topic: string, step: (result: T) => void): (result: T) => void {
    const token = ++this.pending;
    (s.pendingSubs ??= new Map()).set(topic, token);
    return (result) => {
      if (s.closed || s.pendingSubs?.get(topic) !== token) return;
      s.pendingSubs.delete(topic);
      contained('message', this.deps.fault, step, () => endFaulty(door, h, s))(result);
    };
  }
}

/** Closes a connection whose handler threw (1011); the exception was already reported. */
export function endFaulty<H>(door: Door<H>, h: H, s: Session): void {
  if (s.closed) return;
  s.closeReason ??= 'internal_error';
  try {
    door.end(h, s, CloseCode.InternalError, 'internal error');
  } catch {
    // closed meanwhile
  }
}
