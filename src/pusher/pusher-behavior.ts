import type { HttpRequest, HttpResponse, WebSocketBehavior, us_socket_context_t } from 'uWebSockets.js';
import { CommandRate } from '../guard/command-rate';
import type { UpgradeGuard } from '../guard/upgrade-guard';
import type { Logger } from '../log';
import { decodeBounded } from '../protocol/codec';
import { ErrorCode, GatewayError } from '../protocol/codes';
import { Payload } from '../protocol/payload';
import { containSocket, type FaultSink } from '../server/contain';
import { sendError } from '../server/http-reply';
import { channelKind } from './channels';
import { type PusherConnection, type PusherSocket, type PusherSockets, newPusherConnection } from './connection';
import * as frames from './frames';
import { PusherCode } from './frames';
import type { PusherWebhooks } from './pusher-webhooks';
import type { PusherWire } from './pusher-wire';
import type { PresenceEntry } from '../protocol/codec';
import type { Hub } from '../pubsub/hub';
import type { Member, Presence } from '../session/presence';
import type { PusherCommonDeps } from './rest-routes';
import { channelAuthValid, userAuthValid } from './signature';


/** What the socket door needs. */
export interface PusherDeps extends PusherCommonDeps {
  readonly hub: Hub;
  readonly sockets: PusherSockets;
  readonly guard: UpgradeGuard;
  readonly log: Logger;
  readonly isDraining: () => boolean;
  readonly fault: FaultSink;
  readonly wire: PusherWire;
  /** Session presence: a presence channel's members are its presenceBy-"user" users (pusher-door.ts rules). */
  readonly presence: Presence;
  /** The coarse clock connections are stamped with on every frame (pong timeout, activity-sweep.ts). */
  readonly clock: { readonly now: number };
  /** Pusher-format webhooks, when --pusher-webhook-url is set. */
  readonly webhooks: PusherWebhooks | null;
}

// pusher-js 8 speaks protocol 7; Pusher's servers accept 5..7 and refuse others with 4007.
const MIN_PROTOCOL = 5;
const MAX_PROTOCOL = 7;

/**
 * The Pusher Channels front door (`/app/<key>`): connection, channel subscriptions with Pusher's
 * signatures, client events. Channels are hub topics with their own wire format: events reach
 * Pusher subscribers through the hub's encode-once native fan-out like any publish.
 */
export function pusherBehavior(deps: PusherDeps): WebSocketBehavior<PusherConnection> {
  const { config, apps, limits, hub, broker, stats, guard, log, sockets, webhooks, presence } = deps;
  const joinLeave = presence.joinLeave;
  const clientEvents = new CommandRate(limits.clientEventsPerSecond, limits.clientEventsPerSecond);
  const payload = new Payload();

  const send = (ws: PusherSocket, frame: string) => {
    if (ws.getUserData().closed) return;
    stats.sentBytes += frame.length;
    ws.send(frame, false);
  };

  const subscribe = (ws: PusherSocket, conn: PusherConnection, data: Record<string, unknown>) => {
    const channel = data.channel;
    if (typeof channel !== 'string') return send(ws, frames.pusherError(PusherCode.Generic, 'pusher:subscribe needs a channel'));
    const kind = channelKind(channel);
    if (kind === null) return send(ws, frames.subscriptionError(channel, 'InvalidChannel', 'invalid channel name', 400));
    if (kind.user !== null && kind.user !== conn.userId) {
      stats.countError(ErrorCode.Forbidden);
      return send(ws, frames.subscriptionError(channel, 'AuthError', 'a server-to-user channel is for the connection signed in as its user', 401));
    }
    if (conn.channels?.has(channel) === true) return send(ws, frames.subscriptionSucceeded(channel));
    if ((conn.channels?.size ?? 0) >= config.maxTopicsPerConn) {
      return send(ws, frames.subscriptionError(channel, 'LimitReached', `a connection may hold at most ${config.maxTopicsPerConn} channels`, 400));
    }
    let member: Member | null = null;
    if (kind.auth) {
      const auth = typeof data.auth === 'string' ? data.auth : '';
      const channelData = kind.presence && typeof data.channel_data === 'string' ? data.channel_data : undefined;
      if (!channelAuthValid(conn.app.key, conn.app.secret, auth, conn.socketId, channel, channelData)) {
        stats.countError(ErrorCode.Forbidden);
        return send(ws, frames.subscriptionError(channel, 'AuthError', 'Invalid signature: expected HMAC SHA256 hex digest of socket_id:channel', 401));
      }
      if (kind.presence) {
        member = presenceMember(conn.socketId, channelData);
        if (member === null) return send(ws, frames.subscriptionError(channel, 'AuthError', 'channel_data must be JSON with a user_id', 400));
      }
    }
    const topic = apps.topicOf(conn.app, channel);
    if (member !== null && joinLeave.memberCount(topic) >= limits.maxPresenceMembers && !joinLeave.has(topic, member.user as string)) {
      return send(ws, frames.subscriptionError(channel, 'LimitReached', `a presence channel may have at most ${limits.maxPresenceMembers} members`, 400));
    }
    (conn.channels ??= new Map()).set(channel, topic);
    const state = hub.addSubscriber(topic, 'pusher');
    stats.pusherSubscriptions++;
    if (member !== null) {
      // Session presence: member_added reaches the channel's other subscribers on every node when this
      // is the user's first connection anywhere; this socket is not subscribed yet, so not to it.
      (conn.members ??= new Map()).set(channel, member);
      presence.joined(member, topic, state.rule);
    }
    ws.subscribe(state.pusherKey);
    send(ws, frames.subscriptionSucceeded(channel, member === null ? undefined : memberList(joinLeave.members(topic))));
    if (kind.cache) send(ws, deps.wire.lastFrame(state, channel) ?? frames.cacheMiss(channel));
  };

  /** Ends one channel subscription (the socket's own uWS subscription too unless it is closing). */
  const leave = (conn: PusherConnection, channel: string, topic: string, ws: PusherSocket | null) => {
    ws?.unsubscribe('p ' + topic);
    const member = conn.members?.get(channel);
    if (member !== undefined) {
      conn.members?.delete(channel);
      presence.left(member, topic, hub.ruleOf(topic), ws === null);
    }
    hub.removeSubscriber(topic, 'pusher');
    stats.pusherSubscriptions--;
  };

  const unsubscribe = (ws: PusherSocket, conn: PusherConnection, channel: string) => {
    const topic = conn.channels?.get(channel);
    if (topic === undefined) return;
    conn.channels?.delete(channel);
    leave(conn, channel, topic, ws);
  };

  /** A `client-*` event: private and presence channels only, when enabled, rate-limited, never echoed. */
  const clientEvent = (ws: PusherSocket, conn: PusherConnection, name: string, channel: string | undefined, data: unknown) => {
    if (!limits.clientEvents) return send(ws, frames.pusherError(null, 'To send client events, you must enable this feature (--pusher-client-events)'));
    if (channel === undefined || conn.channels?.has(channel) !== true) return send(ws, frames.pusherError(null, 'Client event rejected: not subscribed to the channel'));
    const kind = channelKind(channel);
    if (kind === null || !kind.auth) return send(ws, frames.pusherError(null, 'Client events are allowed on private and presence channels only'));
    if (clientEvents.take(conn, Date.now()) !== 'run') {
      return send(ws, frames.pusherError(PusherCode.ClientEventRateLimit, `Client event rejected: over ${limits.clientEventsPerSecond} per second`));
    }
    const text = typeof data === 'string' ? data : JSON.stringify(data ?? null);
    if (text.length > limits.maxEventBytes) return send(ws, frames.pusherError(null, `Client event rejected: data over ${limits.maxEventBytes} bytes`));
    const userId = kind.presence ? conn.members?.get(channel)?.user : undefined;
    const value = userId === undefined ? { event: name, data: text, socket_id: conn.socketId } : { event: name, data: text, socket_id: conn.socketId, user_id: userId };
    const topic = conn.channels.get(channel) as string;
    const outcome = broker.publish(topic, payload.setValue(value, false), 'socket', performance.now());
    if (outcome instanceof Promise) void outcome.then(undefined, () => undefined);
    webhooks?.emit(conn.app, userId === undefined ? { name: 'client_event', channel, event: name, data: text, socket_id: conn.socketId } : { name: 'client_event', channel, event: name, data: text, socket_id: conn.socketId, user_id: userId });
  };

  const signin = (ws: PusherSocket, conn: PusherConnection, data: Record<string, unknown>) => {
    const auth = typeof data.auth === 'string' ? data.auth : '';
    const userData = typeof data.user_data === 'string' ? data.user_data : '';
    const user = parseJsonObject(userData);
    const id = user?.id;
    if (!userAuthValid(conn.app.key, conn.app.secret, auth, conn.socketId, userData) || (typeof id !== 'string' && typeof id !== 'number')) {
      send(ws, frames.pusherError(PusherCode.Generic, 'Invalid signin: bad signature or user_data without an id'));
      return;
    }
    // Its #server-to-user channel was granted to the first user: a connection stays that user.
    if (conn.userId !== null && conn.userId !== String(id)) return send(ws, frames.pusherError(PusherCode.Generic, 'Invalid signin: the connection is signed in as another user'));
    conn.userId = String(id);
    send(ws, frames.signinSuccess(userData));
  };

  const end = (ws: PusherSocket, code: number, message: string) => {
    const conn = ws.getUserData();
    if (conn.closed) return;
    try {
      ws.end(code, message);
    } catch {
      // closed meanwhile
    }
  };

  return containSocket<PusherConnection>(
    {
      maxPayloadLength: config.maxPayload,
      // Backstop for dead TCP peers only (uWS closes them 1006 after unanswered WebSocket pings); the
      // Pusher-level ping and 4201 are the activity sweep's (activity-sweep.ts says why both).
      idleTimeout: limits.activityTimeout * 2 > 960 ? 960 : Math.max(limits.activityTimeout * 2, 16),
      sendPingsAutomatically: true,
      maxBackpressure: config.maxBackpressure,
      closeOnBackpressureLimit: false,

      upgrade: (res: HttpResponse, req: HttpRequest, context: us_socket_context_t) => {
        const key = req.getParameter(0) ?? '';
        const wsKey = req.getHeader('sec-websocket-key');
        const extensions = req.getHeader('sec-websocket-extensions');
        const protocol = Number(new URLSearchParams(req.getQuery() ?? '').get('protocol') ?? '7');
        if (deps.isDraining()) {
          stats.upgrades.draining++;
          return sendError(res, '503 Service Unavailable', new GatewayError(ErrorCode.Draining, 'node is draining; connect to another'));
        }
        const address = guard.admit(res, req);
        if (address !== null && typeof address === 'object') {
          stats.upgrades[address.result]++;
          return sendError(res, address.result === 'origin_not_allowed' ? '403 Forbidden' : '429 Too Many Requests', address.error);
        }
        // Pusher refuses after the handshake, with an error event and a close code the client acts on.
        const app = apps.withKey(key);
        let refusal: PusherConnection['refusal'] = null;
        if (app === undefined) refusal = { code: PusherCode.AppNotFound, message: `App key ${key} not in this cluster` };
        else if (!(protocol >= MIN_PROTOCOL && protocol <= MAX_PROTOCOL)) refusal = { code: PusherCode.UnsupportedProtocol, message: `Unsupported protocol version ${protocol}` };
        else if (stats.connections + stats.pendingUpgrades >= config.maxConnections) refusal = { code: PusherCode.OverQuota, message: 'Over connection quota' };
        const conn = newPusherConnection(app ?? { id: '', key, secret: '' }, frames.newSocketId(), refusal === null ? address : null, refusal, deps.clock.now);
        res.cork(() => res.upgrade(conn, wsKey, '', extensions, context));
      },

      open: (ws) => {
        const conn = ws.getUserData();
        if (conn.refusal !== null) {
          stats.upgrades.bad_request++;
          send(ws, frames.pusherError(conn.refusal.code, conn.refusal.message));
          conn.closeReason = 'client';
          return end(ws, conn.refusal.code, conn.refusal.message);
        }
        stats.upgrades.accepted++;
        stats.connections++;
        stats.pusherConnections++;
        guard.opened(conn.addressKey);
        sockets.set(conn.socketId, ws);
        send(ws, frames.connectionEstablished(conn.socketId, limits.activityTimeout));
      },

      message: (ws, message, isBinary) => {
        const conn = ws.getUserData();
        conn.seenAt = deps.clock.now;
        stats.receivedBytes += message.byteLength;
        if (isBinary) return send(ws, frames.pusherError(PusherCode.Generic, 'binary frames are not part of the Pusher protocol'));
        let value: unknown;
        try {
          value = decodeBounded(new Uint8Array(message), false, config.maxDepth + 2, config.maxDepth);
        } catch {
          value = undefined;
        }
        const frame = value instanceof GatewayError ? null : frames.parseClientFrame(value);
        if (frame === null) {
          stats.received.invalid++;
          return send(ws, frames.pusherError(PusherCode.Generic, 'frame is not a Pusher event'));
        }
        const data = typeof frame.data === 'object' && frame.data !== null ? (frame.data as Record<string, unknown>) : {};
        stats.pusherEvents++;
        switch (frame.event) {
          case 'pusher:ping':
            return send(ws, frames.pong);
          case 'pusher:pong':
            return;
          case 'pusher:subscribe':
            return subscribe(ws, conn, data);
          case 'pusher:unsubscribe':
            if (typeof data.channel === 'string') unsubscribe(ws, conn, data.channel);
            return;
          case 'pusher:signin':
            return signin(ws, conn, data);
          default:
            if (frame.event.startsWith('client-')) return clientEvent(ws, conn, frame.event, frame.channel, frame.data);
            return send(ws, frames.pusherError(PusherCode.Generic, `unknown event ${frame.event}`));
        }
      },

      close: (ws, code) => {
        const conn = ws.getUserData();
        conn.closed = true;
        if (conn.refusal !== null) return;
        sockets.delete(conn.socketId);
        stats.connections--;
        stats.pusherConnections--;
        guard.closed(conn.addressKey);
        stats.disconnects[conn.closeReason ?? (code === 1006 ? 'error' : 'client')]++;
        if (conn.channels !== null) for (const [channel, topic] of conn.channels) leave(conn, channel, topic, null);
        log.debug({ code, socketId: conn.socketId }, 'pusher connection closed');
      },
    },
    deps.fault,
    (ws) => end(ws, 4009, 'internal error'),
  );
}

/** The member of a presence subscription from its signed channel_data, or null when it has no user_id. */
function presenceMember(socketId: string, channelData: string | undefined): Member | null {
  const data = channelData === undefined ? null : parseJsonObject(channelData);
  const id = data?.user_id;
  if (typeof id !== 'string' && typeof id !== 'number') return null;
  return { client: socketId, user: String(id), info: data?.user_info };
}

/** What pusher_internal:subscription_succeeded carries on a presence channel: `{presence:{ids,hash,count}}`. */
function memberList(entries: Iterable<PresenceEntry> | undefined): { presence: { ids: string[]; hash: Record<string, unknown>; count: number } } {
  const hash: Record<string, unknown> = {};
  for (const e of entries ?? []) hash[e.user] = e.info ?? null;
  const ids = Object.keys(hash);
  return { presence: { ids, hash, count: ids.length } };
}

function parseJsonObject(text: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
