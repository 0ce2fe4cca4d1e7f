import { CommandRate } from '../guard/command-rate';
import type { UpgradeGuard } from '../guard/upgrade-guard';
import type { Logger } from '../log';
import type { PresenceEntry } from '../protocol/codec';
import { ErrorCode } from '../protocol/codes';
import { Payload } from '../protocol/payload';
import type { Hub } from '../pubsub/hub';
import type { FaultSink } from '../server/contain';
import type { Member, Presence } from '../session/presence';
import { channelKind } from './channels';
import type { PusherConnection, PusherSocket, PusherSockets } from './connection';
import * as frames from './frames';
import { PusherCode } from './frames';
import type { PusherWebhooks } from './pusher-webhooks';
import type { PusherWire } from './pusher-wire';
import type { PusherCommonDeps } from './rest-routes';
import { channelAuthValid, userAuthValid } from './signature';
import { publishStart } from '../metrics/publish-clock';

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

/**
 * A Pusher connection's channels: subscriptions with Pusher's signatures (private, presence, cache,
 * server-to-user channels), presence members, client events and signin. Channels are hub topics with
 * the Pusher wire format: events reach subscribers through the hub's native fan-out like any publish.
 */
export class PusherChannels {
  private readonly joinLeave: Presence['joinLeave'];
  private readonly clientEvents: CommandRate;
  private readonly payload = new Payload();

  constructor(private readonly deps: PusherDeps) {
    this.joinLeave = deps.presence.joinLeave;
    this.clientEvents = new CommandRate(deps.limits.clientEventsPerSecond, deps.limits.clientEventsPerSecond);
  }

  send(ws: PusherSocket, frame: string): void {
    if (ws.getUserData().closed) return;
    this.deps.stats.sentBytes += frame.length;
    ws.send(frame, false);
  }

  subscribe(ws: PusherSocket, conn: PusherConnection, data: Record<string, unknown>): void {
    const channel = data.channel;
    if (typeof channel !== 'string') return this.send(ws, frames.pusherError(PusherCode.Generic, 'pusher:subscribe needs a channel'));
    const kind = channelKind(channel);
    if (kind === null) return this.send(ws, frames.subscriptionError(channel, 'InvalidChannel', 'invalid channel name', 400));
    if (kind.user !== null && kind.user !== conn.userId) {
      this.deps.stats.countError(ErrorCode.Forbidden);
      return this.send(ws, frames.subscriptionError(channel, 'AuthError', 'a server-to-user channel is for the connection signed in as its user', 401));
    }
    if (conn.channels?.has(channel) === true) return this.send(ws, frames.subscriptionSucceeded(channel));
    if ((conn.channels?.size ?? 0) >= this.deps.config.maxTopicsPerConn) {
      return this.send(ws, frames.subscriptionError(channel, 'LimitReached', `a connection may hold at most ${this.deps.config.maxTopicsPerConn} channels`, 400));
    }
    let member: Member | null = null;
    if (kind.auth) {
      const auth = typeof data.auth === 'string' ? data.auth : '';
      const channelData = kind.presence && typeof data.channel_data === 'string' ? data.channel_data : undefined;
      if (!channelAuthValid(conn.app.key, conn.app.secret, auth, conn.socketId, channel, channelData)) {
        this.deps.stats.countError(ErrorCode.Forbidden);
        return this.send(ws, frames.subscriptionError(channel, 'AuthError', 'Invalid signature: expected HMAC SHA256 hex digest of socket_id:channel', 401));
      }
      if (kind.presence) {
        member = presenceMember(conn.socketId, channelData);
        if (member === null) return this.send(ws, frames.subscriptionError(channel, 'AuthError', 'channel_data must be JSON with a user_id', 400));
      }
    }
    const topic = this.deps.apps.topicOf(conn.app, channel);
    if (member !== null && this.joinLeave.memberCount(topic) >= this.deps.limits.maxPresenceMembers && !this.joinLeave.has(topic, member.user as string)) {
      return this.send(ws, frames.subscriptionError(channel, 'LimitReached', `a presence channel may have at most ${this.deps.limits.maxPresenceMembers} members`, 400));
    }
    (conn.channels ??= new Map()).set(channel, topic);
    const state = this.deps.hub.addSubscriber(topic, 'pusher');
    this.deps.stats.pusherSubscriptions++;
    if (member !== null) {
      // Session presence: member_added reaches the channel's other subscribers on every node when this
      // is the user's first connection anywhere; this socket is not subscribed yet, so not to it.
      (conn.members ??= new Map()).set(channel, member);
      this.deps.presence.joined(member, topic, state.rule);
    }
    ws.subscribe(state.pusherKey);
    this.send(ws, frames.subscriptionSucceeded(channel, member === null ? undefined : memberList(this.joinLeave.members(topic))));
    if (kind.cache) this.sendCached(ws, conn, channel, topic);
  }

  /**
   * A cache channel's last event (or cache_miss). A broker whose nodes hold a topic's state only while
   * they receive it (workers route a topic only to those with subscribers) gives it at its cut first.
   */
  private sendCached(ws: PusherSocket, conn: PusherConnection, channel: string, topic: string): void {
    const { broker, hub, wire } = this.deps;
    const send = (): void => {
      if (conn.channels?.get(channel) !== topic) return;
      const state = hub.acquire(topic);
      this.send(ws, wire.lastFrame(state, channel) ?? frames.cacheMiss(channel));
    };
    if (broker.snapshot === undefined || broker.inStep?.(topic) !== false) return send();
    broker.snapshot(topic, undefined, send);
  }

  /** Ends one channel subscription (the socket's own uWS subscription too unless it is closing). */
  leave(conn: PusherConnection, channel: string, topic: string, ws: PusherSocket | null): void {
    ws?.unsubscribe('p ' + topic);
    const member = conn.members?.get(channel);
    if (member !== undefined) {
      conn.members?.delete(channel);
      this.deps.presence.left(member, topic, this.deps.hub.ruleOf(topic), ws === null);
    }
    this.deps.hub.removeSubscriber(topic, 'pusher');
    this.deps.stats.pusherSubscriptions--;
  }

  unsubscribe(ws: PusherSocket, conn: PusherConnection, channel: string): void {
    const topic = conn.channels?.get(channel);
    if (topic === undefined) return;
    conn.channels?.delete(channel);
    this.leave(conn, channel, topic, ws);
  }

  /** A `client-*` event: private and presence channels only, when enabled, rate-limited, never echoed. */
  clientEvent(ws: PusherSocket, conn: PusherConnection, name: string, channel: string | undefined, data: unknown): void {
    if (!this.deps.limits.clientEvents) return this.send(ws, frames.pusherError(null, 'To send client events, you must enable this feature (--pusher-client-events)'));
    if (channel === undefined || conn.channels?.has(channel) !== true) return this.send(ws, frames.pusherError(null, 'Client event rejected: not subscribed to the channel'));
    const kind = channelKind(channel);
    if (kind === null || !kind.auth) return this.send(ws, frames.pusherError(null, 'Client events are allowed on private and presence channels only'));
    if (this.clientEvents.take(conn, Date.now()) !== 'run') {
      return this.send(ws, frames.pusherError(PusherCode.ClientEventRateLimit, `Client event rejected: over ${this.deps.limits.clientEventsPerSecond} per second`));
    }
    const text = typeof data === 'string' ? data : JSON.stringify(data ?? null);
    if (text.length > this.deps.limits.maxEventBytes) return this.send(ws, frames.pusherError(null, `Client event rejected: data over ${this.deps.limits.maxEventBytes} bytes`));
    const userId = kind.presence ? conn.members?.get(channel)?.user : undefined;
    const value = userId === undefined ? { event: name, data: text, socket_id: conn.socketId } : { event: name, data: text, socket_id: conn.socketId, user_id: userId };
    const topic = conn.channels.get(channel) as string;
    const outcome = this.deps.broker.publish(topic, this.payload.setValue(value, false), 'socket', publishStart());
    if (outcome instanceof Promise) void outcome.then(undefined, () => undefined);
    this.deps.webhooks?.emit(conn.app, userId === undefined ? { name: 'client_event', channel, event: name, data: text, socket_id: conn.socketId } : { name: 'client_event', channel, event: name, data: text, socket_id: conn.socketId, user_id: userId });
  }

  signin(ws: PusherSocket, conn: PusherConnection, data: Record<string, unknown>): void {
    const auth = typeof data.auth === 'string' ? data.auth : '';
    const userData = typeof data.user_data === 'string' ? data.user_data : '';
    const user = parseJsonObject(userData);
    const id = user?.id;
    if (!userAuthValid(conn.app.key, conn.app.secret, auth, conn.socketId, userData) || (typeof id !== 'string' && typeof id !== 'number')) {
      this.send(ws, frames.pusherError(PusherCode.Generic, 'Invalid signin: bad signature or user_data without an id'));
      return;
    }
    // Its #server-to-user channel was granted to the first user: a connection stays that user.
    if (conn.userId !== null && conn.userId !== String(id)) return this.send(ws, frames.pusherError(PusherCode.Generic, 'Invalid signin: the connection is signed in as another user'));
    conn.userId = String(id);
    this.send(ws, frames.signinSuccess(userData));
  }

  end(ws: PusherSocket, code: number, message: string): void {
    const conn = ws.getUserData();
    if (conn.closed) return;
    try {
      ws.end(code, message);
    } catch {
      // closed meanwhile
    }
  }
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
