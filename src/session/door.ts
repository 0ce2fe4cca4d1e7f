import type { CloseCode, GatewayError } from '../protocol/codes';
import type { Wire } from '../pubsub/hub';
import type { SendFrame } from '../pubsub/replay';
import type { TopicState } from '../pubsub/topic-state';
import type { Session } from './session';

/** A notice outside any reply: the server subscribed or unsubscribed the session. */
export interface SessionNotice {
  readonly op: 'subscribed' | 'unsubscribed';
  readonly t: string;
  readonly reason?: string;
}

/**
 * What the session core needs of a front door (centrifuge's Transport): how a connection of that door,
 * `H`, receives retained and live deliveries, notices and its end. One object per door, not per
 * connection: a handle carries its session, so an idle connection costs nothing more.
 */
export interface Door<H> {
  session(h: H): Session;
  /** How the hub counts the session's subscriptions (and so which frames it fans out for them). */
  wire(s: Session): Wire;
  /**
   * Sends retained deliveries in order, synchronously: `fill` calls `send` with each delivery frame in
   * the session codec's format and its seq; returns what `fill` returned (the count).
   */
  replay(h: H, s: Session, fill: (send: SendFrame) => number): number;
  /** Starts live deliveries of `state` to `h` (a native subscription, for sockets); `delta`: as deltas. */
  join(h: H, s: Session, state: TopicState, delta: boolean): void;
  /** Ends them (`closing`: the connection is going, its transport drops its subscriptions itself). */
  leave(h: H, s: Session, state: TopicState, closing: boolean): void;
  notify(h: H, s: Session, notice: SessionNotice): void;
  /** An operation nobody asked for by request (a subscription on open or by the server) failed later. */
  failed(h: H, s: Session, error: GatewayError): void;
  /** Ends the connection; `s.closeReason` is set already. */
  end(h: H, s: Session, code: CloseCode, reason: string): void;
  /** Every open connection of the door (server-side control). */
  each(): Iterable<H>;
}
