import { performance } from 'node:perf_hooks';
import type { HttpRequest, HttpResponse, WebSocket, WebSocketBehavior, us_socket_context_t } from 'uWebSockets.js';
import { type Grant, openGrant, type TokenVerifier } from '../auth/token-verifier';
import type { Broker, PublishOutcome, TopicSnapshot } from '../broker/broker';
import type { Config } from '../config/schema';
import type { Logger } from '../log';
import type { Stats, UpgradeResult } from '../metrics/stats';
import { type Codec, type Reply, negotiateCodec } from '../protocol/codec';
import { CloseCode, ErrorCode, GatewayError } from '../protocol/codes';
import { type Command, type StreamPosition, parseCommand } from '../protocol/commands';
import { Payload } from '../protocol/payload';
import { PublishReader } from '../protocol/publish-reader';
import { checkTopic } from '../protocol/topic';
import type { Hub } from '../pubsub/hub';
import { type SendFrame, canRecover, replayAfter, replayRetained } from '../pubsub/replay';
import type { TopicState } from '../pubsub/topic-state';
import { type Connection, newConnection } from './connection';
import { bearer, sendError, watchAbort } from './http-reply';

export type Socket = WebSocket<Connection>;

export interface SocketDeps {
  readonly config: Config;
  readonly hub: Hub;
  readonly broker: Broker;
  readonly stats: Stats;
  readonly verifier: TokenVerifier | null;
  readonly log: Logger;
  /** Open sockets, for drain. */
  readonly sockets: Set<Socket>;
  readonly isDraining: () => boolean;
}

const UPGRADE_STATUS: Record<Exclude<UpgradeResult, 'accepted'>, string> = {
  unauthorized: '401 Unauthorized',
  forbidden: '403 Forbidden',
  bad_request: '400 Bad Request',
  limit: '503 Service Unavailable',
  draining: '503 Service Unavailable',
};

const NO_TOPICS: readonly string[] = [];

// Node timers cannot wait longer than 2^31-1 ms; tokens valid longer than ~24 days get no timer.
const MAX_TIMER_MS = 2 ** 31 - 1;
// How long a slow consumer may stay stuck before it is cut without waiting for room for a close frame.
const SLOW_CONSUMER_GRACE_MS = 10_000;

/** The WebSocket side of the gateway: upgrade, commands, fan-out subscription, slow consumers. */
export function socketBehavior(deps: SocketDeps): WebSocketBehavior<Connection> {
  const { config, hub, broker, stats, verifier, log, sockets } = deps;
  // One reused Payload for socket publishes: commands are handled one at a time.
  const payload = new Payload();
  const reader = new PublishReader(config.maxTopicLength);
  let pendingUpgrades = 0;
  let pendingRequests = 0;

  const refuse = (res: HttpResponse, result: Exclude<UpgradeResult, 'accepted'>, error: GatewayError, abort?: { aborted: boolean }) => {
    stats.upgrades[result]++;
    sendError(res, UPGRADE_STATUS[result], error, abort);
  };

  const reply = (ws: Socket, conn: Connection, r: Reply) => {
    if (conn.closed) return;
    const encoded = conn.codec.encodeReply(r);
    stats.sentBytes += typeof encoded === 'string' ? Buffer.byteLength(encoded) : encoded.length;
    ws.send(encoded, conn.codec.binary);
  };

  const fail = (ws: Socket, conn: Connection, e: GatewayError) => {
    stats.countError(e.code);
    reply(ws, conn, e.id === undefined ? { op: 'err', code: e.code, reason: e.reason } : { op: 'err', id: e.id, code: e.code, reason: e.reason });
  };

  const ok = (ws: Socket, conn: Connection, id: number | undefined, extra?: Omit<Extract<Reply, { op: 'ok' }>, 'op' | 'id'>) => {
    if (id !== undefined) reply(ws, conn, { op: 'ok', id, ...extra });
  };

  /** Replies to a `sub` and replays what `replay` sends, corked, before the caller subscribes the socket. */
  const answerSub = (ws: Socket, conn: Connection, id: number | undefined, state: TopicState, since: StreamPosition | undefined, recovered: boolean, replay: (send: SendFrame) => number) => {
    if (since === undefined) return ok(ws, conn, id, { seq: state.seq, epoch: state.epoch });
    stats.recoveries[recovered ? 'recovered' : 'gap']++;
    ok(ws, conn, id, { seq: state.seq, epoch: state.epoch, recovered });
    if (recovered && !conn.closed) {
      ws.cork(() => {
        stats.replayed += replay((f, binary) => {
          ws.send(f, binary);
          stats.sentBytes += f.length;
        });
      });
    }
  };

  /**
   * Runs `step` later for a `sub` that must wait for the broker, unless the connection closed or the
   * topic was unsubscribed or subscribed again meanwhile (that answer would be stale).
   */
  const later = <T>(conn: Connection, topic: string, step: (result: T) => void): ((result: T) => void) => {
    const token = ++pendingRequests;
    (conn.pendingSubs ??= new Map()).set(topic, token);
    return (result) => {
      if (conn.closed || conn.pendingSubs?.get(topic) !== token) return;
      conn.pendingSubs.delete(topic);
      step(result);
    };
  };

  /** Reply, replay from local history and subscribe in one synchronous step: no publish can fall between them. */
  const subscribeNow = (ws: Socket, conn: Connection, topic: string, id: number | undefined, since: StreamPosition | undefined) => {
    const state = hub.acquire(topic);
    const recovered = since !== undefined && canRecover(state, since);
    answerSub(ws, conn, id, state, since, recovered, (send) => replayAfter(state, (since as StreamPosition).seq, conn.codec.name, hub.deliveryEncoder, send));
    ws.subscribe(state.key(conn.codec.name));
  };

  /**
   * Cluster brokers that number topics cluster-wide: the reply, replay and socket subscription wait for the
   * broker's snapshot and then happen in one synchronous step at its cut, so nothing falls between them.
   */
  const subscribeAtCut = (ws: Socket, conn: Connection, topic: string, id: number | undefined, since: StreamPosition | undefined, snapshot: NonNullable<Broker['snapshot']>) => {
    snapshot.call(
      broker,
      topic,
      since,
      later(conn, topic, (snap: TopicSnapshot | GatewayError) => {
        if (snap instanceof GatewayError) {
          // The broker cannot say where the topic is: serve from what this node knows (it keeps serving).
          log.debug({ topic, code: snap.code, reason: snap.reason }, 'sub without broker snapshot');
          return subscribeNow(ws, conn, topic, id, since);
        }
        const state = hub.acquire(topic);
        const replay = snap.replay;
        answerSub(ws, conn, id, state, since, replay !== null, (send) => replayRetained(topic, replay ?? [], conn.codec.name, hub.deliveryEncoder, send));
        ws.subscribe(state.key(conn.codec.name));
      }),
    );
  };

  /** Subscribes; returns the error to send, or null. Idempotent for topics already held. */
  const subscribe = (ws: Socket, conn: Connection, cmd: Extract<Command, { op: 'sub' }>): GatewayError | null => {
    const { topic, id, since } = cmd;
    if (!conn.grant.subscribe.allows(topic)) return new GatewayError(ErrorCode.Forbidden, 'token does not allow subscribing to this topic', id);
    if (conn.topics.has(topic)) {
      const state = hub.acquire(topic);
      ok(ws, conn, id, { seq: state.seq, epoch: state.epoch });
      return null;
    }
    if (conn.topics.size >= config.maxTopicsPerConn) {
      return new GatewayError(ErrorCode.TooManyTopics, `a connection may hold at most ${config.maxTopicsPerConn} subscriptions`, id);
    }
    // Counted before the reply: a broker gaining interest may restart the topic's numbering.
    const state = hub.addSubscriber(topic, conn.codec.name);
    conn.topics.add(state.name); // the hub's string: not one copy of the name per connection
    const snapshot = broker.snapshot;
    if (snapshot !== undefined && (broker.inStep?.(topic) !== true || (since !== undefined && !canRecover(state, since)))) {
      subscribeAtCut(ws, conn, topic, id, since, snapshot);
      return null;
    }
    const live = broker.whenLive?.(topic) ?? null;
    if (live !== null) {
      // Settles, never rejects: a broker that cannot confirm still leaves local fan-out to serve.
      void live.then(later(conn, topic, () => subscribeNow(ws, conn, topic, id, since)));
      return null;
    }
    subscribeNow(ws, conn, topic, id, since);
    return null;
  };

  const unsubscribe = (ws: Socket, conn: Connection, topic: string) => {
    if (!conn.topics.delete(topic)) return;
    conn.pendingSubs?.delete(topic);
    const state = hub.get(topic);
    if (state !== undefined) ws.unsubscribe(state.key(conn.codec.name));
    hub.removeSubscriber(topic, conn.codec.name);
  };

  const publish = (ws: Socket, conn: Connection, topic: string, id: number | undefined, data: Payload, startedAt: number) => {
    if (!config.clientPublish) return fail(ws, conn, new GatewayError(ErrorCode.Forbidden, 'publishing from clients is disabled', id));
    if (!conn.grant.publish.allows(topic)) return fail(ws, conn, new GatewayError(ErrorCode.Forbidden, 'token does not allow publishing to this topic', id));
    const outcome = broker.publish(topic, data, 'socket', startedAt);
    if (typeof outcome !== 'number') return settleLater(ws, conn, id, outcome);
    if (id !== undefined) ok(ws, conn, id, { seq: outcome });
  };

  // Apart from publish(): a closure in publish() itself would cost a context object on every publish.
  const settleLater = (ws: Socket, conn: Connection, id: number | undefined, outcome: GatewayError | Promise<PublishOutcome>) => {
    const settle = (o: PublishOutcome) => (typeof o === 'number' ? ok(ws, conn, id, { seq: o }) : fail(ws, conn, o.withId(id)));
    if (outcome instanceof Promise) outcome.then(settle, () => settle(new GatewayError(ErrorCode.Unavailable, 'broker failed', id)));
    else settle(outcome);
  };

  const handle = (ws: Socket, conn: Connection, cmd: Command, startedAt: number) => {
    stats.received[cmd.op]++;
    switch (cmd.op) {
      case 'sub': {
        const err = subscribe(ws, conn, cmd);
        if (err !== null) fail(ws, conn, err);
        return;
      }
      case 'unsub':
        unsubscribe(ws, conn, cmd.topic);
        return ok(ws, conn, cmd.id);
      case 'pub':
        return publish(ws, conn, cmd.topic, cmd.id, payload.setValue(cmd.data, conn.codec.binary), startedAt);
      case 'ping':
        return ok(ws, conn, cmd.id);
    }
  };

  const accept = (res: HttpResponse, key: string, protocol: string, extensions: string, context: us_socket_context_t, codec: Codec, grant: Grant, topics: string[]) => {
    res.cork(() => res.upgrade(newConnection(codec, grant, topics), key, protocol === '' ? '' : codec.subprotocol, extensions, context));
  };

  return {
    // The transport's hard cut: above it uWS drops the connection without a close frame (1006).
    // Between maxPayload and this, message() answers with a proper 1009.
    maxPayloadLength: config.maxPayload * 4,
    idleTimeout: config.idleTimeout,
    sendPingsAutomatically: true,
    maxBackpressure: config.maxBackpressure,
    closeOnBackpressureLimit: false,

    upgrade: (res, req: HttpRequest, context) => {
      const key = req.getHeader('sec-websocket-key');
      const version = req.getHeader('sec-websocket-version');
      const protocol = req.getHeader('sec-websocket-protocol');
      const extensions = req.getHeader('sec-websocket-extensions');
      const authorization = req.getHeader('authorization');
      const query = new URLSearchParams(req.getQuery() ?? '');
      if (key.length !== 24 || version !== '13') {
        return refuse(res, 'bad_request', new GatewayError(ErrorCode.BadRequest, 'a WebSocket upgrade needs Sec-WebSocket-Key and Sec-WebSocket-Version: 13'));
      }
      if (deps.isDraining()) return refuse(res, 'draining', new GatewayError(ErrorCode.Draining, 'node is draining; connect to another'));
      if (stats.connections + pendingUpgrades >= config.maxConnections) {
        return refuse(res, 'limit', new GatewayError(ErrorCode.TooManyConnections, `node holds its limit of ${config.maxConnections} connections`));
      }
      const codec = negotiateCodec(protocol);
      if (codec === null) {
        return refuse(res, 'bad_request', new GatewayError(ErrorCode.UnsupportedSubprotocol, 'Sec-WebSocket-Protocol must offer wsgate.json or wsgate.msgpack'));
      }
      const topics = (query.get('topics') ?? '').split(',').filter((t) => t !== '');
      if (topics.length > config.maxTopicsPerConn) {
        return refuse(res, 'bad_request', new GatewayError(ErrorCode.TooManyTopics, `at most ${config.maxTopicsPerConn} topics`));
      }
      for (const t of topics) {
        const err = checkTopic(t, config.maxTopicLength);
        if (err !== null) return refuse(res, 'bad_request', err);
      }
      if (verifier === null) return accept(res, key, protocol, extensions, context, codec, openGrant, topics);

      // Token verification is async: the request must be guarded against the client leaving meanwhile.
      const abort = watchAbort(res);
      const token = bearer(authorization) || (query.get('token') ?? '');
      pendingUpgrades++;
      verifier.verify(token).then((grant) => {
        pendingUpgrades--;
        if (abort.aborted) return;
        if (grant instanceof GatewayError) return refuse(res, 'unauthorized', grant, abort);
        const denied = topics.find((t) => !grant.subscribe.allows(t));
        if (denied !== undefined) return refuse(res, 'forbidden', new GatewayError(ErrorCode.Forbidden, `token does not allow subscribing to ${denied}`), abort);
        accept(res, key, protocol, extensions, context, codec, grant, topics);
      });
    },

    open: (ws) => {
      const conn = ws.getUserData();
      stats.upgrades.accepted++;
      stats.connections++;
      sockets.add(ws);
      for (const topic of conn.initialTopics) subscribe(ws, conn, { op: 'sub', topic, id: undefined, since: undefined });
      conn.initialTopics = NO_TOPICS;
      const exp = conn.grant.expiresAt;
      if (exp !== undefined) {
        const ms = exp * 1000 - Date.now();
        if (ms < MAX_TIMER_MS) {
          conn.expiry = setTimeout(() => {
            if (conn.closed) return;
            conn.closeReason = 'token_expired';
            ws.end(CloseCode.PolicyViolation, 'token expired');
          }, Math.max(ms, 0));
        }
      }
    },

    message: (ws, message, isBinary) => {
      const startedAt = performance.now();
      const conn = ws.getUserData();
      stats.receivedBytes += message.byteLength;
      if (message.byteLength > config.maxPayload) {
        conn.closeReason = 'too_big';
        ws.end(CloseCode.TooBig, 'message too big');
        return;
      }
      if (isBinary !== conn.codec.binary) {
        stats.received.invalid++;
        return fail(ws, conn, new GatewayError(ErrorCode.BadFrame, conn.codec.binary ? 'expected a binary msgpack frame' : 'expected a text JSON frame'));
      }
      // A plain publish is read in place (no decode); everything else, malformed frames included, below.
      const bytes = Buffer.from(message);
      if (reader.socketPub(bytes, !conn.codec.binary)) {
        stats.received.pub++;
        return publish(ws, conn, reader.topic(0), reader.id, reader.data(0), startedAt);
      }
      let frame: unknown;
      try {
        frame = conn.codec.decode(message);
      } catch {
        stats.received.invalid++;
        return fail(ws, conn, new GatewayError(ErrorCode.BadFrame, `frame is not valid ${conn.codec.name}`));
      }
      const cmd = parseCommand(frame, config.maxTopicLength);
      if (cmd instanceof GatewayError) {
        stats.received.invalid++;
        return fail(ws, conn, cmd);
      }
      handle(ws, conn, cmd, startedAt);
    },

    dropped: (ws) => {
      const conn = ws.getUserData();
      stats.slowConsumerDrops++;
      if (config.slowConsumer === 'drop') {
        conn.dropped++;
        return;
      }
      if (conn.closeReason === null && !conn.closed) {
        conn.closeReason = 'slow_consumer';
        stats.slowConsumerDisconnects++;
        // dropped() runs inside uWS's publish loop, where closing or unsubscribing the socket crashes the
        // process (seen: SIGSEGV); so both wait until the publish has returned. Unsubscribing then keeps
        // what the client already has a gap-free prefix it can resume from with `since`. The 4008 close
        // is sent from drain() once the client reads again (a close frame sent into a full buffer would be
        // dropped: the client would see 1006), or after a grace period at the latest.
        queueMicrotask(() => {
          if (conn.closed) return;
          for (const topic of [...conn.topics]) unsubscribe(ws, conn, topic);
          conn.closeTimer = setTimeout(() => {
            if (!conn.closed) ws.end(CloseCode.SlowConsumer, 'slow consumer');
          }, SLOW_CONSUMER_GRACE_MS);
        });
      }
    },

    drain: (ws) => {
      const conn = ws.getUserData();
      if (conn.closeReason === 'slow_consumer') {
        if (!conn.closed && ws.getBufferedAmount() < config.maxBackpressure) ws.end(CloseCode.SlowConsumer, 'slow consumer');
        return;
      }
      if (conn.dropped > 0 && ws.getBufferedAmount() < config.maxBackpressure / 2) {
        const n = conn.dropped;
        conn.dropped = 0;
        reply(ws, conn, { op: 'dropped', n });
      }
    },

    close: (ws, code) => {
      const conn = ws.getUserData();
      conn.closed = true;
      sockets.delete(ws);
      stats.connections--;
      stats.disconnects[conn.closeReason ?? (code === 1006 ? 'error' : 'client')]++;
      if (conn.expiry !== null) clearTimeout(conn.expiry);
      if (conn.closeTimer !== null) clearTimeout(conn.closeTimer);
      for (const topic of conn.topics) hub.removeSubscriber(topic, conn.codec.name);
      log.debug({ code, reason: conn.closeReason, subject: conn.grant.subject }, 'connection closed');
    },
  };
}
