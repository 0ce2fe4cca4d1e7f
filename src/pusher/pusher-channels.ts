import { CommandRate } from '../guard/command-rate';
import type { UpgradeGuard } from '../guard/upgrade-guard';
import type { Logger } from '../log';
import type { PresenceEntry } from '../protocol/codec';
import { ErrorCode } from '../protocol/codes';
import { FrameBuffer, copyBytes, writeAscii } from '../protocol/delivery';
import { Payload } from '../protocol/payload';
import { TopicNames } from '../protocol/topic-names';
import type { Hub } from '../pubsub/hub';
import type { FaultSink } from '../server/contain';
import type { Member, Presence } from '../session/presence';
import { channelKind } from './channels';
import type { PusherConnection, PusherSocket, PusherSockets } from './connection';
import { C_CHANNEL, C_DATA, C_EVENT, E_DATA, E_EVENT, E_SOCKET, E_USER, type StringFields } from './event-scan';
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
  // A scanned client event's data (the payload's bytes until the publish returns: brokers copy them).
  private readonly eventOut = new FrameBuffer(4096);
  private readonly channelNames = new TopicNames();

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

  /** A `client-*` event decoded the general way: private and presence channels only, when enabled, rate-limited, never echoed. */
  clientEvent(ws: PusherSocket, conn: PusherConnection, name: string, channel: string | undefined, data: unknown): void {
    const text = typeof data === 'string' ? data : JSON.stringify(data ?? null);
    const topic = this.clientEventTopic(ws, conn, channel, text.length);
    if (topic === null) return;
    const userId = this.presenceUser(conn, channel as string);
    const value = userId === undefined ? { event: name, data: text, socket_id: conn.socketId } : { event: name, data: text, socket_id: conn.socketId, user_id: userId };
    this.publishClientEvent(conn, topic, channel as string, this.payload.setValue(value, false), name, text, userId);
  }

  /**
   * A `client-*` frame ClientEventScan read in place (bytes `b`): the same checks and publish as
   * clientEvent, with the event's data built by copying the frame's spans (event-scan.ts says why).
   */
  clientEventScanned(ws: PusherSocket, conn: PusherConnection, b: Buffer, f: StringFields): void {
    const channel = this.channelNames.get(b, (f.start[C_CHANNEL] as number) + 1, (f.end[C_CHANNEL] as number) - 1);
    const topic = this.clientEventTopic(ws, conn, channel, f.units[C_DATA] as number);
    if (topic === null) return;
    const userId = this.presenceUser(conn, channel);
    const es = f.start[C_EVENT] as number;
    const ee = f.end[C_EVENT] as number;
    const ds = f.start[C_DATA] as number;
    const de = f.end[C_DATA] as number;
    const user = userId === undefined ? '' : JSON.stringify(userId);
    const out = this.eventOut.reserve(48 + ee - es + de - ds + conn.socketId.length + 3 * user.length);
    // What JSON.stringify of clientEvent's value writes, with the frame's (valid JSON) strings as they came.
    const e0 = writeAscii(out, 0, '{"event":');
    const e1 = copyBytes(b, es, ee, out, e0);
    const d0 = writeAscii(out, e1, ',"data":');
    const d1 = copyBytes(b, ds, de, out, d0);
    const s0 = writeAscii(out, d1, ',"socket_id":');
    out[s0] = 0x22; // "
    const s1 = writeAscii(out, s0 + 1, conn.socketId) + 1;
    out[s1 - 1] = 0x22;
    const u0 = userId === undefined ? -1 : writeAscii(out, s1, ',"user_id":');
    const u1 = u0 < 0 ? s1 : u0 + out.write(user, u0, 'utf8');
    out[u1] = 0x7d; // }
    // The Pusher wire frames this data from these spans, without walking it again.
    const known = this.deps.wire.expectEvent(out, u1 + 1);
    spans(known, E_EVENT, e0, e1);
    spans(known, E_DATA, d0, d1);
    spans(known, E_SOCKET, s0, s1);
    if (u0 >= 0) spans(known, E_USER, u0, u1);
    const payload = this.payload.setRaw(out, 0, u1 + 1, true);
    // Webhooks need the strings; without them the event is never decoded.
    if (this.deps.webhooks === null) this.publishClientEvent(conn, topic, channel, payload, '', '', userId);
    else this.publishClientEvent(conn, topic, channel, payload, b.toString('latin1', es + 1, ee - 1), JSON.parse(b.toString('utf8', ds, de)) as string, userId);
  }

  /** The checks on a client event, in Pusher's order; its topic, or null after answering the refusal. */
  private clientEventTopic(ws: PusherSocket, conn: PusherConnection, channel: string | undefined, textLength: number): string | null {
    if (!this.deps.limits.clientEvents) return this.refuse(ws, frames.pusherError(null, 'To send client events, you must enable this feature (--pusher-client-events)'));
    const topic = channel === undefined ? undefined : conn.channels?.get(channel);
    if (channel === undefined || topic === undefined) return this.refuse(ws, frames.pusherError(null, 'Client event rejected: not subscribed to the channel'));
    // A subscribed channel passed channelKind: private-, private-encrypted- and presence- need auth.
    if (!channel.startsWith('private-') && !channel.startsWith('presence-')) return this.refuse(ws, frames.pusherError(null, 'Client events are allowed on private and presence channels only'));
    if (this.clientEvents.take(conn, Date.now()) !== 'run') {
      return this.refuse(ws, frames.pusherError(PusherCode.ClientEventRateLimit, `Client event rejected: over ${this.deps.limits.clientEventsPerSecond} per second`));
    }
    if (textLength > this.deps.limits.maxEventBytes) return this.refuse(ws, frames.pusherError(null, `Client event rejected: data over ${this.deps.limits.maxEventBytes} bytes`));
    return topic;
  }

  private refuse(ws: PusherSocket, frame: string): null {
    this.send(ws, frame);
    return null;
  }

  /** A presence channel's client events name their sender's user. */
  private presenceUser(conn: PusherConnection, channel: string): string | undefined {
    return channel.startsWith('presence-') ? conn.members?.get(channel)?.user : undefined;
  }

  private publishClientEvent(conn: PusherConnection, topic: string, channel: string, payload: Payload, name: string, text: string, userId: string | undefined): void {
    const outcome = this.deps.broker.publish(topic, payload, 'socket', publishStart());
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

function spans(f: StringFields, field: number, start: number, end: number): void {
  f.start[field] = start;
  f.end[field] = end;
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
