import type { WebSocket } from 'uWebSockets.js';
import type { PublishOutcome } from '../broker/broker';
import type { Stats } from '../metrics/stats';
import type { Reply } from '../protocol/codec';
import { type CloseCode, ErrorCode, GatewayError } from '../protocol/codes';
import type { Command } from '../protocol/commands';
import type { Payload } from '../protocol/payload';
import type { Wire } from '../pubsub/hub';
import type { SendFrame } from '../pubsub/replay';
import type { TopicState } from '../pubsub/topic-state';
import type { SessionCore } from '../session/core';
import type { Door, SessionNotice } from '../session/door';
import type { Session } from '../session/session';
import { type SubAnswer, endFaulty } from '../session/subscriptions';
import type { Outcome } from '../session/topic-queries';
import { contained, type FaultSink } from './contain';

export type Socket = WebSocket<Session>;
type OkFields = Omit<Extract<Reply, { op: 'ok' }>, 'op' | 'id'>;

/**
 * The wsgate protocol's side of the session core: how a socket receives replays, live deliveries
 * (native uWS subscriptions per codec), notices and its end; and how commands' outcomes become replies.
 */
export class SocketDoor implements Door<Socket> {
  constructor(
    private readonly core: SessionCore,
    private readonly stats: Stats,
    private readonly fault: FaultSink,
    /** Open sockets, for drain and server-side control. */
    readonly sockets: Set<Socket>,
  ) {}

  session(ws: Socket): Session {
    return ws.getUserData();
  }

  wire(s: Session): Wire {
    return s.codec.name;
  }

  replay(ws: Socket, s: Session, fill: (send: SendFrame) => number): number {
    if (s.closed) return 0;
    let n = 0;
    ws.cork(() => {
      n = fill((frame, binary) => {
        ws.send(frame, binary);
        this.stats.sentBytes += frame.length;
      });
    });
    return n;
  }

  /** A delta subscription waits in the topic's delta table for its first full delivery. */
  join(ws: Socket, s: Session, state: TopicState, delta: boolean): void {
    ws.subscribe(state.key(s.codec.name));
    if (delta) state.delta?.join(ws, s.codec.name);
  }

  leave(ws: Socket, s: Session, state: TopicState, closing: boolean): void {
    if (!closing) ws.unsubscribe(state.key(s.codec.name));
    state.delta?.leave(ws, closing);
  }

  notify(ws: Socket, s: Session, notice: SessionNotice): void {
    this.reply(ws, s, notice);
  }

  failed(ws: Socket, s: Session, error: GatewayError): void {
    this.fail(ws, s, error);
  }

  end(ws: Socket, _s: Session, code: CloseCode, reason: string): void {
    ws.end(code, reason);
  }

  each(): Iterable<Socket> {
    return this.sockets;
  }

  /** Runs one decoded command. */
  handle(ws: Socket, s: Session, cmd: Command, startedAt: number): void {
    const { core } = this;
    this.stats.received[cmd.op]++;
    switch (cmd.op) {
      case 'sub': {
        const err = core.subscriptions.subscribe(this, ws, s, cmd, this.subAnswer(ws, s, cmd.id));
        if (err !== null) this.fail(ws, s, err);
        return;
      }
      case 'unsub':
        core.subscriptions.unsubscribe(this, ws, s, cmd.topic);
        return this.ok(ws, s, cmd.id);
      case 'pub':
        return this.published(ws, s, cmd.id, core.publishing.publish(s, cmd, startedAt));
      case 'ping':
        return this.ok(ws, s, cmd.id);
      case 'refresh': {
        const err = core.refresh(this, ws, s, cmd.token, cmd.id);
        return err === null ? this.ok(ws, s, cmd.id) : this.fail(ws, s, err);
      }
      case 'history':
        return this.answer(ws, s, cmd.id, core.queries.history(s.grant.subscribe, cmd.topic, cmd.limit, cmd.since));
      case 'presence':
        return this.answer(ws, s, cmd.id, core.presence.list(s.grant.subscribe, cmd.topic));
      case 'presence_stats':
        return this.answer(ws, s, cmd.id, core.presence.stats(s.grant.subscribe, cmd.topic));
    }
  }

  /** A plain publish read in place (PublishingOps.asRead): `data` is a view of the frame, valid during this call. */
  publishRead(ws: Socket, s: Session, topic: string, id: number | undefined, data: Payload, startedAt: number): void {
    this.published(ws, s, id, this.core.publishing.publishRead(s, topic, data, startedAt, id === undefined));
  }

  reply(ws: Socket, s: Session, r: Reply): void {
    if (s.closed) return;
    const encoded = s.codec.encodeReply(r);
    this.stats.sentBytes += typeof encoded === 'string' ? Buffer.byteLength(encoded) : encoded.length;
    ws.send(encoded, s.codec.binary);
  }

  fail(ws: Socket, s: Session, e: GatewayError): void {
    this.stats.countError(e.code);
    this.reply(ws, s, e.id === undefined ? { op: 'err', code: e.code, reason: e.reason } : { op: 'err', id: e.id, code: e.code, reason: e.reason });
  }

  private ok(ws: Socket, s: Session, id: number | undefined, extra?: OkFields): void {
    if (id !== undefined) this.reply(ws, s, { op: 'ok', id, ...extra });
  }

  private subAnswer(ws: Socket, s: Session, id: number | undefined): SubAnswer {
    return (o) => (o instanceof GatewayError ? this.fail(ws, s, o.withId(id)) : this.ok(ws, s, id, o));
  }

  /** Replies with a publish's seq or error, now or when it settles. */
  private published(ws: Socket, s: Session, id: number | undefined, outcome: PublishOutcome | Promise<PublishOutcome>): void {
    // The `{ seq }` object only when there is an id to answer (publishes without one get no reply).
    if (typeof outcome === 'number') return id === undefined ? undefined : this.ok(ws, s, id, { seq: outcome });
    if (!(outcome instanceof Promise)) return this.fail(ws, s, outcome.withId(id));
    this.publishedLater(ws, s, id, outcome);
  }

  /**
   * A publish the broker answers later. Its own method: a function that makes closures gets its context
   * object on entry, and unoptimized code (a publish path at a few dozen publishes a second) pays for it
   * on every call, the plain path included (73 B per publish in a heap profile).
   */
  private publishedLater(ws: Socket, s: Session, id: number | undefined, outcome: Promise<PublishOutcome>): void {
    const settle = contained('message', this.fault, (o: PublishOutcome) => this.published(ws, s, id, o), () => endFaulty(this, ws, s));
    outcome.then(settle, () => settle(new GatewayError(ErrorCode.Unavailable, 'broker failed')));
  }

  /** Replies with a session operation's outcome, now or when the broker answers. */
  private answer<T extends OkFields>(ws: Socket, s: Session, id: number | undefined, outcome: Outcome<T>): void {
    const done = (o: T | GatewayError) => (o instanceof GatewayError ? this.fail(ws, s, o.withId(id)) : this.ok(ws, s, id, o));
    if (outcome instanceof Promise) outcome.then(done, () => done(new GatewayError(ErrorCode.Unavailable, 'broker failed')));
    else done(outcome);
  }
}
