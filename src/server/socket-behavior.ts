import type { HttpRequest, HttpResponse, WebSocketBehavior, us_socket_context_t } from 'uWebSockets.js';
import type { Admission } from '../auth/admitted';
import type { Config } from '../config/schema';
import type { CommandRate } from '../guard/command-rate';
import type { Logger } from '../log';
import type { Stats, UpgradeResult } from '../metrics/stats';
import { type Codec, negotiateCodec } from '../protocol/codec';
import { CloseCode, ErrorCode, GatewayError } from '../protocol/codes';
import { parseCommand } from '../protocol/commands';
import { PublishReader } from '../protocol/publish-reader';
import type { SessionCore } from '../session/core';
import { type Entry, type EntryRefusal, type Knocking, isEntryRefusal } from '../session/entrance';
import { type Session, newSession } from '../session/session';
import { endFaulty } from '../session/subscriptions';
import { AsyncUpgrades, type Handshake, completeUpgrade, readHandshake } from './async-upgrade';
import { answerInternalError, contained, containSocket, type FaultSink } from './contain';
import { type Aborted, sendError } from './http-reply';
import { type Socket, SocketDoor } from './socket-door';
import { publishStart } from '../metrics/publish-clock';

export interface SocketDeps {
  readonly config: Config;
  readonly core: SessionCore;
  readonly stats: Stats;
  readonly log: Logger;
  /** Open sockets, for drain. */
  readonly sockets: Set<Socket>;
  readonly commandRate: CommandRate;
  readonly fault: FaultSink;
}

/** The HTTP status each refused upgrade (or SSE request) is answered with. */
export const UPGRADE_STATUS: Record<Exclude<UpgradeResult, 'accepted'>, string> = {
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

/** The subprotocol to echo: none when the client offered none (JSON by default). */
const protocol = (hs: Handshake, codec: Codec): string => (hs.protocol === '' ? '' : codec.subprotocol);
// How long a slow consumer may stay stuck before it is cut without waiting for room for a close frame.
const SLOW_CONSUMER_GRACE_MS = 10_000;

/** The wsgate WebSocket front door: upgrade, frames decoded into session operations, slow consumers. */
export function socketBehavior(deps: SocketDeps): WebSocketBehavior<Session> {
  const { core, fault } = deps;
  const door = new SocketDoor(core, deps.stats, fault, deps.sockets);
  core.attach(door);
  const upgrade = upgrader(deps);
  const message = messageHandler(deps, door);
  return containSocket<Session>(
    {
      // The transport's hard cut: above it uWS drops the connection without a close frame (1006).
      // Between maxPayload and this, message() answers with a proper 1009.
      maxPayloadLength: deps.config.maxPayload * 4,
      idleTimeout: deps.config.idleTimeout,
      sendPingsAutomatically: true,
      maxBackpressure: deps.config.maxBackpressure,
      closeOnBackpressureLimit: false,
      upgrade,
      open: (ws) => {
        deps.sockets.add(ws);
        core.opened(door, ws, ws.getUserData());
      },
      message,
      dropped: (ws) => dropped(deps, door, ws),
      drain: (ws) => drained(deps, door, ws),
      close: (ws, code) => {
        deps.sockets.delete(ws);
        core.closed(door, ws, ws.getUserData(), code);
      },
    },
    fault,
    (ws) => endFaulty(door, ws, ws.getUserData()),
  );
}

/** Refuses an upgrade with its documented status, counted by result. */
export function refuse(stats: Stats, res: HttpResponse, r: EntryRefusal, abort?: Aborted): void {
  stats.upgrades[r.result]++;
  sendError(res, UPGRADE_STATUS[r.result], r.error, abort, true);
}

function upgrader(deps: SocketDeps): (res: HttpResponse, req: HttpRequest, context: us_socket_context_t) => void {
  const { config, core, stats, log, fault } = deps;
  const upgrades = new AsyncUpgrades(stats, core.entrance.guard);
  const enter = (res: HttpResponse, hs: Handshake, codec: Codec, k: Knocking, a: Admission, abort?: Aborted) => {
    const entry: Entry | EntryRefusal = core.entrance.enter(k, a, config.maxTopicsPerConn);
    if (isEntryRefusal(entry)) return refuse(stats, res, entry, abort);
    completeUpgrade(res, hs, newSession(codec, entry.grant, entry.opening, entry.address), protocol(hs, codec));
  };
  return (res, req, context) => {
    const hs = readHandshake(req, context);
    if (hs.key.length !== 24 || req.getHeader('sec-websocket-version') !== '13') {
      return refuse(stats, res, { result: 'bad_request', error: new GatewayError(ErrorCode.BadRequest, 'a WebSocket upgrade needs Sec-WebSocket-Key and Sec-WebSocket-Version: 13') });
    }
    const query = req.getQuery() ?? '';
    const codec = negotiateCodec(hs.protocol);
    const k = core.entrance.knock(res, req, query, codec, config.maxTopicsPerConn);
    if (isEntryRefusal(k)) return refuse(stats, res, k);
    const admission = k.admission;
    if (admission instanceof Promise) {
      const finish = contained('upgrade', fault, (a: Admission, abort: Aborted) => enter(res, hs, codec as Codec, k, a, abort), (_a, abort) => !abort.aborted && answerInternalError(res));
      return upgrades.wait(res, admission, finish);
    }
    if ('refused' in admission) log.debug({ url: req.getUrl(), query: req.getQuery(), code: admission.error.code, reason: admission.error.reason }, 'upgrade refused');
    enter(res, hs, codec as Codec, k, admission);
  };
}

/** Frames: size and rate checks, a plain publish read in place, everything else decoded into a command. */
function messageHandler(deps: SocketDeps, door: SocketDoor): (ws: Socket, message: ArrayBuffer, isBinary: boolean) => void {
  const { config, core, stats, commandRate } = deps;
  const reader = new PublishReader(config.maxTopicLength, config.maxDepth);
  return (ws, message, isBinary) => {
    const startedAt = publishStart();
    const conn = ws.getUserData();
    stats.receivedBytes += message.byteLength;
    if (message.byteLength > config.maxPayload) {
      conn.closeReason = 'too_big';
      return ws.end(CloseCode.TooBig, 'message too big');
    }
    // Every frame is charged, valid or not, so garbage cannot flood past the limit.
    const verdict = commandRate.enabled ? commandRate.take(conn, Date.now()) : 'run';
    if (verdict === 'flood') {
      conn.closeReason = 'command_flood';
      return ws.end(CloseCode.CommandFlood, 'command flood: reconnect with backoff');
    }
    if (isBinary !== conn.codec.binary) {
      stats.received.invalid++;
      return door.fail(ws, conn, new GatewayError(ErrorCode.BadFrame, conn.codec.binary ? 'expected a binary msgpack frame' : 'expected a text JSON frame'));
    }
    // A plain publish is read in place (no decode); everything else, malformed or rate-refused frames
    // included, below.
    const bytes = Buffer.from(message);
    const scanned = verdict === 'run';
    if (scanned && reader.socketPub(bytes, !conn.codec.binary)) {
      const topic = reader.topic(0);
      if (core.publishing.asRead(conn, topic)) {
        stats.received.pub++;
        return door.publishRead(ws, conn, topic, reader.id, reader.data(0), startedAt);
      }
    }
    const cmd = decode(deps, conn, bytes, scanned && reader.wellFormed);
    if (cmd instanceof GatewayError) {
      stats.received.invalid++;
      return door.fail(ws, conn, cmd);
    }
    if (verdict === 'refuse') {
      stats.commandsRateLimited++;
      return door.fail(ws, conn, new GatewayError(ErrorCode.RateLimited, `over ${config.maxCommandsPerSecond} commands per second; not executed`, cmd.id));
    }
    door.handle(ws, conn, cmd, startedAt);
  };
}

/** A frame as a command, or the error to reply. `wellFormed`: the scan already walked it. */
function decode(deps: SocketDeps, conn: Session, bytes: Buffer, wellFormed: boolean): ReturnType<typeof parseCommand> {
  const { config, stats } = deps;
  let frame: unknown;
  try {
    // The same view the scan read: one object per frame, and no second walk when the scan covered it.
    frame = conn.codec.decode(bytes, config.maxDepth, wellFormed);
  } catch {
    return new GatewayError(ErrorCode.BadFrame, `frame is not valid ${conn.codec.name}`);
  }
  if (frame instanceof GatewayError) {
    stats.tooDeep.socket++;
    return frame;
  }
  return parseCommand(frame, config.maxTopicLength);
}

function dropped(deps: SocketDeps, door: SocketDoor, ws: Socket): void {
  const { config, stats, core } = deps;
  const conn = ws.getUserData();
  stats.slowConsumerDrops++;
  if (config.slowConsumer === 'drop') {
    conn.dropped++;
    return;
  }
  if (conn.closeReason !== null || conn.closed) return;
  conn.closeReason = 'slow_consumer';
  stats.slowConsumerDisconnects++;
  // dropped() runs inside uWS's publish loop, where closing or unsubscribing the socket crashes the
  // process (seen: SIGSEGV); so both wait until the publish has returned. Unsubscribing then keeps
  // what the client already has a gap-free prefix it can resume from with `since`. The 4008 close
  // is sent from drain() once the client reads again (a close frame sent into a full buffer would be
  // dropped: the client would see 1006), or after a grace period at the latest.
  queueMicrotask(() => {
    if (conn.closed) return;
    for (const topic of [...conn.topics]) core.subscriptions.unsubscribe(door, ws, conn, topic);
    conn.closeTimer = setTimeout(() => {
      if (!conn.closed) ws.end(CloseCode.SlowConsumer, 'slow consumer');
    }, SLOW_CONSUMER_GRACE_MS);
  });
}

function drained(deps: SocketDeps, door: SocketDoor, ws: Socket): void {
  const { config } = deps;
  const conn = ws.getUserData();
  if (conn.closeReason === 'slow_consumer') {
    if (!conn.closed && ws.getBufferedAmount() < config.maxBackpressure) ws.end(CloseCode.SlowConsumer, 'slow consumer');
    return;
  }
  if (conn.dropped > 0 && ws.getBufferedAmount() < config.maxBackpressure / 2) {
    const n = conn.dropped;
    conn.dropped = 0;
    door.reply(ws, conn, { op: 'dropped', n });
  }
}
