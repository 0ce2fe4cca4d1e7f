import { performance } from 'node:perf_hooks';
import type { HttpRequest, HttpResponse, WebSocket, WebSocketBehavior } from 'uWebSockets.js';
import { type Admission, type Admitter, isRefused } from '../auth/admission';
import type { Broker, PublishOutcome, TopicSnapshot } from '../broker/broker';
import type { Grant } from '../auth/token-verifier';
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
import { armExpiry, refreshGrant } from '../session/token-lifetime';
import type { Outcome, TopicQueries } from '../session/topic-queries';
import type { Presence } from '../session/presence';
import type { ControlAction, ServerControl } from '../session/server-control';
import type { CommandRate } from '../guard/command-rate';
import type { AddressKey, UpgradeGuard } from '../guard/upgrade-guard';
import { inOrder } from '../hooks/publish-order';
import { type Caller } from '../hooks/topic-proxies';
import type { TopicProxies } from '../hooks/hooks';
import type { SessionEvents } from '../hooks/session-events';
import type { Idempotency } from '../idempotency/idempotency';
import { type Connection, clientId, newConnection } from './connection';
import { AsyncUpgrades, type Handshake, completeUpgrade, readHandshake } from './async-upgrade';
import { answerInternalError, contained, containSocket, type FaultSink } from './contain';
import { type Aborted, bearer, sendError } from './http-reply';
import { commaList, queryValue } from './query';

export type Socket = WebSocket<Connection>;
type OkFields = Omit<Extract<Reply, { op: 'ok' }>, 'op' | 'id'>;

export interface SocketDeps {
  readonly config: Config;
  readonly hub: Hub;
  readonly broker: Broker;
  readonly queries: TopicQueries;
  readonly presence: Presence;
  readonly control: ServerControl;
  readonly stats: Stats;
  readonly admitter: Admitter;
  readonly proxies: TopicProxies;
  readonly events: SessionEvents | null;
  readonly idempotency: Idempotency;
  readonly log: Logger;
  /** Open sockets, for drain. */
  readonly sockets: Set<Socket>;
  readonly isDraining: () => boolean;
  /** Origin policy and per-address limits, checked on upgrade. */
  readonly guard: UpgradeGuard;
  readonly commandRate: CommandRate;
  readonly fault: FaultSink;
}

const UPGRADE_STATUS: Record<Exclude<UpgradeResult, 'accepted'>, string> = {
  unauthorized: '401 Unauthorized',
  forbidden: '403 Forbidden',
  bad_request: '400 Bad Request',
  limit: '503 Service Unavailable',
  draining: '503 Service Unavailable',
  unavailable: '503 Service Unavailable',
  origin_not_allowed: '403 Forbidden',
  ip_limit: '429 Too Many Requests',
  ip_rate: '429 Too Many Requests',
  proxy_unavailable: '503 Service Unavailable',
};

/** The first of `topics` the grant does not let the connection subscribe to (a loop: no closure per upgrade). */
const firstDenied = (subscribe: Grant['subscribe'], topics: readonly string[]): string | undefined => {
  for (const t of topics) if (!subscribe.allows(t)) return t;
  return undefined;
};

const caller = (conn: Connection): Caller => ({ client: clientId(conn), user: conn.grant.subject, info: conn.grant.info });

/** The subprotocol to echo: none when the client offered none (JSON by default). */
const protocol = (hs: Handshake, codec: Codec): string => (hs.protocol === '' ? '' : codec.subprotocol);
// How long a slow consumer may stay stuck before it is cut without waiting for room for a close frame.
const SLOW_CONSUMER_GRACE_MS = 10_000;

/** The WebSocket side of the gateway: upgrade, commands, fan-out subscription, slow consumers. */
export function socketBehavior(deps: SocketDeps): WebSocketBehavior<Connection> {
  const { config, hub, broker, queries, presence, stats, admitter, proxies, events, idempotency, log, sockets, guard, commandRate, fault } = deps;
  // One reused Payload for socket publishes: commands are handled one at a time.
  const payload = new Payload();
  const reader = new PublishReader(config.maxTopicLength, config.maxDepth);
  const upgrades = new AsyncUpgrades(stats);
  let pendingRequests = 0;

  const refuse = (res: HttpResponse, result: Exclude<UpgradeResult, 'accepted'>, error: GatewayError, abort?: Aborted) => {
    stats.upgrades[result]++;
    sendError(res, UPGRADE_STATUS[result], error, abort, true);
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

  const ok = (ws: Socket, conn: Connection, id: number | undefined, extra?: OkFields) => {
    if (id !== undefined) reply(ws, conn, { op: 'ok', id, ...extra });
  };

  /** Replies with a session operation's outcome, now or when the broker answers. */
  const answer = <T extends OkFields>(ws: Socket, conn: Connection, id: number | undefined, outcome: Outcome<T>) => {
    const done = (o: T | GatewayError) => (o instanceof GatewayError ? fail(ws, conn, o.withId(id)) : ok(ws, conn, id, o));
    if (outcome instanceof Promise) outcome.then(done, () => done(new GatewayError(ErrorCode.Unavailable, 'broker failed')));
    else done(outcome);
  };

  /** Replies to a `sub` and replays what `replay` sends, corked, before the caller subscribes the socket. */
  const answerSub = (ws: Socket, conn: Connection, id: number | undefined, state: TopicState, since: StreamPosition | undefined, recovered: boolean, replay: (send: SendFrame) => number) => {
    if (since === undefined) {
      ok(ws, conn, id, { seq: state.seq, epoch: state.epoch });
      // Rule lastMessage: the current state at once, as an ordinary delivery, before live ones.
      const last = state.rule.lastMessage ? state.last : null;
      if (last !== null && !conn.closed) {
        stats.lastMessageHits++;
        replayRetained(state.name, [last], conn.codec.name, hub.deliveryEncoder, (f, binary) => {
          ws.send(f, binary);
          stats.sentBytes += f.length;
        });
      }
      return;
    }
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
  const later = <T>(ws: Socket, conn: Connection, topic: string, step: (result: T) => void): ((result: T) => void) => {
    const token = ++pendingRequests;
    (conn.pendingSubs ??= new Map()).set(topic, token);
    return (result) => {
      if (conn.closed || conn.pendingSubs?.get(topic) !== token) return;
      conn.pendingSubs.delete(topic);
      contained('message', fault, step, () => endFaulty(ws))(result);
    };
  };

  /** Answers a `sub` from local history: the reply, then (when recovered) what was retained after `since`. */
  const answerFromHistory = (ws: Socket, conn: Connection, id: number | undefined, state: TopicState, since: StreamPosition | undefined) => {
    const recovered = since !== undefined && canRecover(state, since);
    answerSub(ws, conn, id, state, since, recovered, (send) => replayAfter(state, (since as StreamPosition).seq, conn.codec.name, hub.deliveryEncoder, send));
  };

  /** Reply, replay from local history and subscribe in one synchronous step: no publish can fall between them. */
  const subscribeNow = (ws: Socket, conn: Connection, topic: string, id: number | undefined, since: StreamPosition | undefined, delta: boolean) => {
    const state = hub.acquire(topic);
    answerFromHistory(ws, conn, id, state, since);
    joinKey(ws, conn, state, delta);
  };

  /** Subscribes the socket to the topic's key for its codec; a delta subscription waits there for its first full delivery. */
  const joinKey = (ws: Socket, conn: Connection, state: TopicState, delta: boolean) => {
    ws.subscribe(state.key(conn.codec.name));
    if (delta) state.delta?.join(ws, conn.codec.name);
  };

  /**
   * Cluster brokers that number topics cluster-wide: the reply, replay and socket subscription wait for the
   * broker's snapshot and then happen in one synchronous step at its cut, so nothing falls between them.
   */
  const subscribeAtCut = (ws: Socket, conn: Connection, topic: string, id: number | undefined, since: StreamPosition | undefined, delta: boolean, snapshot: NonNullable<Broker['snapshot']>) => {
    snapshot.call(
      broker,
      topic,
      since,
      later(ws, conn, topic, (snap: TopicSnapshot | GatewayError) => {
        if (snap instanceof GatewayError) {
          // The broker cannot say where the topic is: serve from what this node knows (it keeps serving).
          log.debug({ topic, code: snap.code, reason: snap.reason }, 'sub without broker snapshot');
          return subscribeNow(ws, conn, topic, id, since, delta);
        }
        const state = hub.acquire(topic);
        const replay = snap.replay;
        answerSub(ws, conn, id, state, since, replay !== null, (send) => replayRetained(topic, replay ?? [], conn.codec.name, hub.deliveryEncoder, send));
        joinKey(ws, conn, state, delta);
      }),
    );
  };

  /** Subscribes; returns the error to send, or null. Idempotent for topics already held. `allowed`: grant and application already agreed. */
  const subscribe = (ws: Socket, conn: Connection, cmd: Extract<Command, { op: 'sub' }>, allowed = false): GatewayError | null => {
    const { topic, id, since } = cmd;
    const delta = cmd.delta !== undefined;
    if (!allowed && !conn.grant.subscribe.allows(topic)) return new GatewayError(ErrorCode.Forbidden, 'token does not allow subscribing to this topic', id);
    if (delta && !hub.ruleOf(topic).delta) return new GatewayError(ErrorCode.DeltaDisabled, 'this topic has no deltas (see the topic rules)', id);
    if (conn.topics.has(topic)) {
      // Already receiving it live; a `since` still gets its answer and replay (clients drop the repeats by `s`).
      answerFromHistory(ws, conn, id, hub.acquire(topic), since);
      return null;
    }
    if (conn.topics.size >= config.maxTopicsPerConn) {
      return new GatewayError(ErrorCode.TooManyTopics, `a connection may hold at most ${config.maxTopicsPerConn} subscriptions`, id);
    }
    const proxy = proxies.subscribe;
    if (!allowed && proxy !== null && proxy.applies(topic)) {
      if (conn.topics.size + (conn.pendingSubs?.size ?? 0) >= config.maxTopicsPerConn) {
        return new GatewayError(ErrorCode.TooManyTopics, `a connection may hold at most ${config.maxTopicsPerConn} subscriptions`, id);
      }
      const answered = later(ws, conn, topic, (denied: GatewayError | null) => {
        const err = denied ?? subscribe(ws, conn, cmd, true);
        if (err !== null) fail(ws, conn, err.withId(id));
      });
      void proxy.ask(caller(conn), topic).then(answered);
      return null;
    }
    // Counted before the reply: a broker gaining interest may restart the topic's numbering.
    const state = hub.addSubscriber(topic, conn.codec.name);
    conn.topics.add(state.name); // the hub's string: not one copy of the name per connection
    if (state.rule.members) presence.joined(caller(conn), topic, state.rule);
    if (state.rule.presence) events?.joined(conn, topic);
    const snapshot = broker.snapshot;
    const needsLast = since === undefined && state.rule.lastMessage && state.last === null;
    if (snapshot !== undefined && (broker.inStep?.(topic) !== true || needsLast || (since !== undefined && !canRecover(state, since)))) {
      subscribeAtCut(ws, conn, topic, id, since, delta, snapshot);
      return null;
    }
    const live = broker.whenLive?.(topic) ?? null;
    if (live !== null) {
      // Settles, never rejects: a broker that cannot confirm still leaves local fan-out to serve.
      void live.then(later(ws, conn, topic, () => subscribeNow(ws, conn, topic, id, since, delta)));
      return null;
    }
    subscribeNow(ws, conn, topic, id, since, delta);
    return null;
  };

  const unsubscribe = (ws: Socket, conn: Connection, topic: string) => {
    // Also forgets a sub still waiting (broker snapshot, subscribe proxy): its answer is dropped.
    conn.pendingSubs?.delete(topic);
    if (!conn.topics.delete(topic)) return;
    const state = hub.get(topic);
    if (state !== undefined) ws.unsubscribe(state.key(conn.codec.name));
    left(ws, conn, topic, false);
  };

  const left = (ws: Socket, conn: Connection, topic: string, closing: boolean) => {
    hub.get(topic)?.delta?.leave(ws, closing);
    const rule = hub.removeSubscriber(topic, conn.codec.name);
    if (rule?.members) presence.left(caller(conn), topic, rule, closing);
    if (rule?.presence === true) events?.left(conn, topic);
  };

  /** Why `conn` may not publish to `topic` (client publishing off, or not in its grant), or null. */
  const publishRefusal = (conn: Connection, topic: string, id: number | undefined): GatewayError | null => {
    if (!config.clientPublish) return new GatewayError(ErrorCode.Forbidden, 'publishing from clients is disabled', id);
    if (!conn.grant.publish.allows(topic)) return new GatewayError(ErrorCode.Forbidden, 'token does not allow publishing to this topic', id);
    return null;
  };

  /**
   * Whether a publish read in place (PublishReader) can go out as it is: the scan already refused an
   * idempotencyKey (unknown to it) and data deeper than --max-depth; what is left is anything that needs
   * the data decoded or the publish held back: the publish proxy (or this connection's queue behind it)
   * and the client_publish webhook.
   */
  const publishesAsRead = (conn: Connection, topic: string): boolean => {
    const proxy = proxies.publish;
    if (proxy !== null && (conn.pubQueue !== null || proxy.applies(topic))) return false;
    return events === null || !events.publishHooked(topic);
  };

  /** A publish read in place (see publishesAsRead): `data` is a view of the frame, valid during this call. */
  const publishRead = (ws: Socket, conn: Connection, topic: string, id: number | undefined, data: Payload, startedAt: number) => {
    const refused = publishRefusal(conn, topic, id);
    if (refused !== null) return fail(ws, conn, refused);
    const outcome = broker.publish(topic, data, 'socket', startedAt);
    if (typeof outcome === 'number') return ok(ws, conn, id, { seq: outcome });
    settleLater(ws, conn, topic, id, outcome, false, undefined);
  };

  const publish = (ws: Socket, conn: Connection, cmd: Extract<Command, { op: 'pub' }>, startedAt: number) => {
    const refused = publishRefusal(conn, cmd.topic, cmd.id);
    if (refused !== null) return fail(ws, conn, refused);
    const proxy = proxies.publish;
    if (proxy === null || (conn.pubQueue === null && !proxy.applies(cmd.topic))) return publishNow(ws, conn, cmd, cmd.data, startedAt);
    // Behind the application's answer, and so is every later publish of this connection until the queue empties.
    const queued = inOrder(conn, async () => {
      if (!proxy.applies(cmd.topic)) return publishNow(ws, conn, cmd, cmd.data, startedAt);
      const allowed = await proxy.ask(caller(conn), cmd.topic, cmd.data);
      if (allowed instanceof GatewayError) fail(ws, conn, allowed.withId(cmd.id));
      else publishNow(ws, conn, cmd, allowed.data, startedAt);
    });
    if (!queued) fail(ws, conn, new GatewayError(ErrorCode.Unavailable, 'too many publishes waiting for the application', cmd.id));
  };

  const publishNow = (ws: Socket, conn: Connection, cmd: Extract<Command, { op: 'pub' }>, data: unknown, startedAt: number) => {
    const { topic, id, idempotencyKey } = cmd;
    // No closure on the plain path: only keyed publishes pay for idempotency.
    const outcome =
      idempotencyKey === undefined
        ? broker.publish(topic, payload.setValue(data, conn.codec.binary), 'socket', startedAt)
        : idempotency.once(topic, idempotencyKey, () => broker.publish(topic, payload.setValue(data, conn.codec.binary), 'socket', startedAt));
    if (typeof outcome !== 'number') return settleLater(ws, conn, topic, id, outcome, true, data);
    events?.published(conn, topic, outcome, data);
    ok(ws, conn, id, { seq: outcome });
  };

  // Apart from the publishes: a closure there would cost a context object on every publish. `report`:
  // whether the publish goes to the client_publish webhook (with `data`).
  const settleLater = (ws: Socket, conn: Connection, topic: string, id: number | undefined, outcome: GatewayError | Promise<PublishOutcome>, report: boolean, data: unknown) => {
    const settle = contained(
      'message',
      fault,
      (o: PublishOutcome) => {
        if (typeof o !== 'number') return fail(ws, conn, o.withId(id));
        if (report) events?.published(conn, topic, o, data);
        ok(ws, conn, id, { seq: o });
      },
      () => endFaulty(ws),
    );
    if (outcome instanceof Promise) outcome.then(settle, () => settle(new GatewayError(ErrorCode.Unavailable, 'broker failed', id)));
    else settle(outcome);
  };

  const expire = (ws: Socket, conn: Connection) => () => {
    if (conn.closed) return;
    conn.closeReason = 'token_expired';
    ws.end(CloseCode.PolicyViolation, 'token expired');
  };

  /** Swaps the grant; topics it no longer allows end with an `unsubscribed` notice before the `ok`. */
  const refresh = (ws: Socket, conn: Connection, cmd: Extract<Command, { op: 'refresh' }>) => {
    const r = refreshGrant(admitter.verifier, conn, cmd.token, cmd.id);
    if (r instanceof GatewayError) return fail(ws, conn, r);
    conn.grant = r.grant;
    for (const t of r.revoked) {
      unsubscribe(ws, conn, t);
      reply(ws, conn, { op: 'unsubscribed', t, reason: 'the refreshed token does not allow this topic' });
    }
    armExpiry(conn, expire(ws, conn));
    ok(ws, conn, cmd.id);
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
        return publish(ws, conn, cmd, startedAt);
      case 'ping':
        return ok(ws, conn, cmd.id);
      case 'refresh':
        return refresh(ws, conn, cmd);
      case 'history':
        return answer(ws, conn, cmd.id, queries.history(conn.grant.subscribe, cmd.topic, cmd.limit, cmd.since));
      case 'presence':
        return answer(ws, conn, cmd.id, presence.list(conn.grant.subscribe, cmd.topic));
      case 'presence_stats':
        return answer(ws, conn, cmd.id, presence.stats(conn.grant.subscribe, cmd.topic));
    }
  };

  /** Lets an admitted connection in: query topics must be allowed, the application's topics are trusted. */
  const enter = (res: HttpResponse, hs: Handshake, codec: Codec, topics: readonly string[], address: AddressKey, admission: Admission, abort?: Aborted) => {
    if (isRefused(admission)) return refuse(res, admission.refused, admission.error, abort);
    const denied = firstDenied(admission.grant.subscribe, topics);
    if (denied !== undefined) return refuse(res, 'forbidden', new GatewayError(ErrorCode.Forbidden, `not allowed to subscribe to ${denied}`), abort);
    if (topics.length + admission.serverTopics.length > config.maxTopicsPerConn) {
      return refuse(res, 'bad_request', new GatewayError(ErrorCode.TooManyTopics, `at most ${config.maxTopicsPerConn} topics`), abort);
    }
    const full = guard.stillRoom(address);
    if (full !== null) return refuse(res, full.result, full.error, abort);
    const opening = topics.length + admission.serverTopics.length === 0 ? null : { query: topics, server: admission.serverTopics };
    completeUpgrade(res, hs, newConnection(codec, admission.grant, opening, address), protocol(hs, codec));
  };

  /** Server-side control of one connection (POST /disconnect, /subscribe, /unsubscribe); whether it changed anything. */
  const serverSide = (ws: Socket, conn: Connection, action: ControlAction): boolean => {
    switch (action.kind) {
      case 'disconnect':
        conn.closeReason = 'server';
        ws.end(action.reconnect ? CloseCode.ServerDisconnect : CloseCode.ServerDisconnectTerminal, 'disconnected by the server');
        return true;
      case 'subscribe': {
        if (conn.topics.has(action.topic)) return false;
        // The notice first: the deliveries (the latest message, if any) follow it.
        reply(ws, conn, { op: 'subscribed', t: action.topic });
        return subscribe(ws, conn, { op: 'sub', topic: action.topic, id: undefined, since: undefined }, true) === null;
      }
      case 'unsubscribe':
        if (!conn.topics.has(action.topic)) return false;
        unsubscribe(ws, conn, action.topic);
        reply(ws, conn, { op: 'unsubscribed', t: action.topic });
        return true;
    }
  };
  deps.control.attach((target, action) => {
    let affected = 0;
    for (const ws of sockets) {
      const conn = ws.getUserData();
      const match = 'user' in target ? conn.grant.subject === target.user : 'client' in target && clientId(conn) === target.client;
      if (match && !conn.closed && serverSide(ws, conn, action)) affected++;
    }
    return affected;
  });

  /** Closes a connection whose handler threw (1011); the exception was already reported. */
  const endFaulty = (ws: Socket) => {
    const conn = ws.getUserData();
    if (conn.closed) return;
    conn.closeReason ??= 'internal_error';
    try {
      ws.end(CloseCode.InternalError, 'internal error');
    } catch {
      // closed meanwhile
    }
  };

  return containSocket<Connection>({
    // The transport's hard cut: above it uWS drops the connection without a close frame (1006).
    // Between maxPayload and this, message() answers with a proper 1009.
    maxPayloadLength: config.maxPayload * 4,
    idleTimeout: config.idleTimeout,
    sendPingsAutomatically: true,
    maxBackpressure: config.maxBackpressure,
    closeOnBackpressureLimit: false,

    upgrade: (res, req: HttpRequest, context) => {
      const hs = readHandshake(req, context);
      const version = req.getHeader('sec-websocket-version');
      const authorization = req.getHeader('authorization');
      const query = req.getQuery() ?? '';
      if (hs.key.length !== 24 || version !== '13') {
        return refuse(res, 'bad_request', new GatewayError(ErrorCode.BadRequest, 'a WebSocket upgrade needs Sec-WebSocket-Key and Sec-WebSocket-Version: 13'));
      }
      if (deps.isDraining()) return refuse(res, 'draining', new GatewayError(ErrorCode.Draining, 'node is draining; connect to another'));
      const address = guard.admit(res, req);
      if (address !== null && typeof address === 'object') return refuse(res, address.result, address.error);
      if (stats.connections + stats.pendingUpgrades >= config.maxConnections) {
        return refuse(res, 'limit', new GatewayError(ErrorCode.TooManyConnections, `node holds its limit of ${config.maxConnections} connections`));
      }
      const codec = negotiateCodec(hs.protocol);
      if (codec === null) {
        return refuse(res, 'bad_request', new GatewayError(ErrorCode.UnsupportedSubprotocol, 'Sec-WebSocket-Protocol must offer wsgate.json or wsgate.msgpack'));
      }
      const topics = commaList(queryValue(query, 'topics'));
      if (topics.length > config.maxTopicsPerConn) {
        return refuse(res, 'bad_request', new GatewayError(ErrorCode.TooManyTopics, `at most ${config.maxTopicsPerConn} topics`));
      }
      for (const t of topics) {
        const err = checkTopic(t, config.maxTopicLength);
        if (err !== null) return refuse(res, 'bad_request', err);
      }
      const admission = admitter.admit(bearer(authorization) || (queryValue(query, 'token') ?? ''), req, res, query, codec);
      if (!(admission instanceof Promise) && isRefused(admission)) {
        log.debug({ url: req.getUrl(), query: req.getQuery(), code: admission.error.code, reason: admission.error.reason }, 'upgrade refused');
      }
      if (admission instanceof Promise) {
        upgrades.wait(
          res,
          admission,
          contained('upgrade', fault, (a: Admission, abort: Aborted) => enter(res, hs, codec, topics, address, a, abort), (_a, abort) => !abort.aborted && answerInternalError(res)),
        );
      } else enter(res, hs, codec, topics, address, admission);
    },

    open: (ws) => {
      const conn = ws.getUserData();
      stats.upgrades.accepted++;
      stats.connections++;
      sockets.add(ws);
      guard.opened(conn.addressKey);
      const opening = conn.opening;
      if (opening !== null) {
        conn.opening = null;
        for (const topic of opening.query) subscribe(ws, conn, { op: 'sub', topic, id: undefined, since: undefined });
        // The application gave these (connect proxy): no grant check, no subscribe proxy.
        for (const topic of opening.server) subscribe(ws, conn, { op: 'sub', topic, id: undefined, since: undefined }, true);
      }
      // No closure for connections whose grant never expires (most): it would be garbage at once.
      if (conn.grant.expiresAt !== undefined) armExpiry(conn, expire(ws, conn));
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
      // Every frame is charged, valid or not, so garbage cannot flood past the limit.
      const verdict = commandRate.enabled ? commandRate.take(conn, Date.now()) : 'run';
      if (verdict === 'flood') {
        conn.closeReason = 'command_flood';
        ws.end(CloseCode.CommandFlood, 'command flood: reconnect with backoff');
        return;
      }
      if (isBinary !== conn.codec.binary) {
        stats.received.invalid++;
        return fail(ws, conn, new GatewayError(ErrorCode.BadFrame, conn.codec.binary ? 'expected a binary msgpack frame' : 'expected a text JSON frame'));
      }
      // A plain publish is read in place (no decode); everything else, malformed or rate-refused frames
      // included, below.
      const bytes = Buffer.from(message);
      const scanned = verdict === 'run';
      if (scanned && reader.socketPub(bytes, !conn.codec.binary)) {
        const topic = reader.topic(0);
        if (publishesAsRead(conn, topic)) {
          stats.received.pub++;
          return publishRead(ws, conn, topic, reader.id, reader.data(0), startedAt);
        }
      }
      let frame: unknown;
      try {
        // The same view the scan read: one object per frame, and no second walk when the scan covered it.
        frame = conn.codec.decode(bytes, config.maxDepth, scanned && reader.wellFormed);
      } catch {
        stats.received.invalid++;
        return fail(ws, conn, new GatewayError(ErrorCode.BadFrame, `frame is not valid ${conn.codec.name}`));
      }
      if (frame instanceof GatewayError) {
        stats.received.invalid++;
        stats.tooDeep.socket++;
        return fail(ws, conn, frame);
      }
      const cmd = parseCommand(frame, config.maxTopicLength);
      if (cmd instanceof GatewayError) {
        stats.received.invalid++;
        return fail(ws, conn, cmd);
      }
      if (verdict === 'refuse') {
        stats.commandsRateLimited++;
        return fail(ws, conn, new GatewayError(ErrorCode.RateLimited, `over ${config.maxCommandsPerSecond} commands per second; not executed`, cmd.id));
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
      guard.closed(conn.addressKey);
      stats.disconnects[conn.closeReason ?? (code === 1006 ? 'error' : 'client')]++;
      if (conn.expiry !== null) clearTimeout(conn.expiry);
      if (conn.closeTimer !== null) clearTimeout(conn.closeTimer);
      for (const topic of conn.topics) left(ws, conn, topic, true);
      events?.disconnected(conn, code);
      log.debug({ code, reason: conn.closeReason, subject: conn.grant.subject }, 'connection closed');
    },
  }, fault, endFaulty);
}
