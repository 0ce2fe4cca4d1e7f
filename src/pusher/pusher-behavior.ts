import type { HttpRequest, HttpResponse, WebSocketBehavior, us_socket_context_t } from 'uWebSockets.js';
import type { AddressKey } from '../guard/upgrade-guard';
import { decodeBounded } from '../protocol/codec';
import { ErrorCode, GatewayError } from '../protocol/codes';
import { containSocket } from '../server/contain';
import { sendError } from '../server/http-reply';
import { type PusherConnection, type PusherSocket, newPusherConnection } from './connection';
import { ClientEventScan } from './event-scan';
import * as frames from './frames';
import { PusherCode } from './frames';
import { PusherChannels, type PusherDeps } from './pusher-channels';

// pusher-js 8 speaks protocol 7; Pusher's servers accept 5..7 and refuse others with 4007.
const MIN_PROTOCOL = 5;
const MAX_PROTOCOL = 7;

/**
 * The Pusher Channels front door (`/app/<key>`): the Pusher protocol's connection and frames; its
 * channels (signatures, presence members, client events) are PusherChannels'. A Pusher connection is
 * its own kind of session (socket id, per-channel signatures, signin), sharing the hub, presence and
 * server control with the session core; it has no grants, proxies, idempotency or recovery to repeat.
 */
export function pusherBehavior(deps: PusherDeps): WebSocketBehavior<PusherConnection> {
  const { config, limits } = deps;
  const channels = new PusherChannels(deps);
  return containSocket<PusherConnection>(
    {
      maxPayloadLength: config.maxPayload,
      // Backstop for dead TCP peers only (uWS closes them 1006 after unanswered WebSocket pings); the
      // Pusher-level ping and 4201 are the activity sweep's (activity-sweep.ts says why both).
      idleTimeout: limits.activityTimeout * 2 > 960 ? 960 : Math.max(limits.activityTimeout * 2, 16),
      sendPingsAutomatically: true,
      maxBackpressure: config.maxBackpressure,
      closeOnBackpressureLimit: false,
      upgrade: (res, req, context) => upgrade(deps, res, req, context),
      open: (ws) => opened(deps, channels, ws),
      message: (ws, message, isBinary) => received(deps, channels, ws, message, isBinary),
      close: (ws, code) => closed(deps, channels, ws, code),
    },
    deps.fault,
    (ws) => channels.end(ws, 4009, 'internal error'),
  );
}

function upgrade(deps: PusherDeps, res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
  const { apps, stats, guard } = deps;
  const key = req.getParameter(0) ?? '';
  const wsKey = req.getHeader('sec-websocket-key');
  const extensions = req.getHeader('sec-websocket-extensions');
  const protocol = Number(new URLSearchParams(req.getQuery() ?? '').get('protocol') ?? '7');
  if (deps.isDraining()) {
    stats.upgrades.draining++;
    return sendError(res, '503 Service Unavailable', new GatewayError(ErrorCode.Draining, 'node is draining; connect to another'));
  }
  const admitted = guard.admit(res, req);
  // The upgrade completes in this handler: the address's room is held for it now.
  const checked = admitted !== null && typeof admitted === 'object' ? admitted : guard.stillRoom(admitted);
  if (checked !== null) {
    stats.upgrades[checked.result]++;
    return sendError(res, checked.result === 'origin_not_allowed' ? '403 Forbidden' : '429 Too Many Requests', checked.error);
  }
  const address = admitted as AddressKey;
  // Pusher refuses after the handshake, with an error event and a close code the client acts on.
  const app = apps.withKey(key);
  let refusal: PusherConnection['refusal'] = null;
  if (app === undefined) refusal = { code: PusherCode.AppNotFound, message: `App key ${key} not in this cluster` };
  else if (!(protocol >= MIN_PROTOCOL && protocol <= MAX_PROTOCOL)) refusal = { code: PusherCode.UnsupportedProtocol, message: `Unsupported protocol version ${protocol}` };
  else if (guard.full()) refusal = { code: PusherCode.OverQuota, message: 'Over connection quota' };
  const conn = newPusherConnection(app ?? { id: '', key, secret: '' }, frames.newSocketId(), refusal === null ? address : null, refusal, deps.clock.now);
  // Inside the upgrade handler the socket is corked already (see completeUpgrade).
  res.upgrade(conn, wsKey, '', extensions, context);
}

function opened(deps: PusherDeps, channels: PusherChannels, ws: PusherSocket): void {
  const { stats } = deps;
  const conn = ws.getUserData();
  if (conn.refusal !== null) {
    stats.upgrades.bad_request++;
    channels.send(ws, frames.pusherError(conn.refusal.code, conn.refusal.message));
    conn.closeReason = 'client';
    return channels.end(ws, conn.refusal.code, conn.refusal.message);
  }
  stats.upgrades.accepted++;
  stats.connections++;
  stats.pusherConnections++;
  deps.guard.opened(conn.addressKey);
  deps.sockets.set(conn.socketId, ws);
  channels.send(ws, frames.connectionEstablished(conn.socketId, deps.limits.activityTimeout));
}

// One scanner for the door: frames are handled one at a time, and its spans are used before the next.
const scan = new ClientEventScan();

function received(deps: PusherDeps, channels: PusherChannels, ws: PusherSocket, message: ArrayBuffer, isBinary: boolean): void {
  const { config, stats } = deps;
  const conn = ws.getUserData();
  conn.seenAt = deps.clock.now;
  stats.receivedBytes += message.byteLength;
  if (isBinary) return channels.send(ws, frames.pusherError(PusherCode.Generic, 'binary frames are not part of the Pusher protocol'));
  // A plain client event is read in place; everything else is decoded whole (event-scan.ts says why).
  const bytes = Buffer.from(message);
  if (scan.frame(bytes, bytes.length)) {
    stats.pusherEvents++;
    return channels.clientEventScanned(ws, conn, bytes, scan.fields);
  }
  let value: unknown;
  try {
    value = decodeBounded(bytes, false, config.maxDepth + 2, config.maxDepth);
  } catch {
    value = undefined;
  }
  const frame = value instanceof GatewayError ? null : frames.parseClientFrame(value);
  if (frame === null) {
    stats.received.invalid++;
    return channels.send(ws, frames.pusherError(PusherCode.Generic, 'frame is not a Pusher event'));
  }
  const data = typeof frame.data === 'object' && frame.data !== null ? (frame.data as Record<string, unknown>) : {};
  stats.pusherEvents++;
  switch (frame.event) {
    case 'pusher:ping':
      return channels.send(ws, frames.pong);
    case 'pusher:pong':
      return;
    case 'pusher:subscribe':
      return channels.subscribe(ws, conn, data);
    case 'pusher:unsubscribe':
      if (typeof data.channel === 'string') channels.unsubscribe(ws, conn, data.channel);
      return;
    case 'pusher:signin':
      return channels.signin(ws, conn, data);
    default:
      if (frame.event.startsWith('client-')) return channels.clientEvent(ws, conn, frame.event, frame.channel, frame.data);
      return channels.send(ws, frames.pusherError(PusherCode.Generic, `unknown event ${frame.event}`));
  }
}

function closed(deps: PusherDeps, channels: PusherChannels, ws: PusherSocket, code: number): void {
  const { stats } = deps;
  const conn = ws.getUserData();
  conn.closed = true;
  if (conn.refusal !== null) return;
  deps.sockets.delete(conn.socketId);
  stats.connections--;
  stats.pusherConnections--;
  deps.guard.closed(conn.addressKey);
  stats.disconnects[conn.closeReason ?? (code === 1006 ? 'error' : 'client')]++;
  if (conn.channels !== null) for (const [channel, topic] of conn.channels) channels.leave(conn, channel, topic, null);
  deps.log.debug({ code, socketId: conn.socketId }, 'pusher connection closed');
}
