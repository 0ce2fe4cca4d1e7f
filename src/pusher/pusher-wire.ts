import { FrameBuffer, copyBytes, writeAscii } from '../protocol/delivery';
import type { Payload } from '../protocol/payload';
import { TopicNames } from '../protocol/topic-names';
import { unpackr } from '../protocol/msgpack';
import type { Notice } from '../pubsub/hub';
import type { TopicState } from '../pubsub/topic-state';
import type { PusherApps } from './apps';
import { channelKind } from './channels';
import * as frames from './frames';
import type { PusherSocket, PusherSockets } from './connection';
import { E_DATA, E_EVENT, E_SOCKET, E_USER, EventDataScan, type StringFields } from './event-scan';

/** What a wsgate publish is as a Pusher event. */
export interface PusherEvent {
  readonly name: string;
  readonly data: string;
  /** Socket id the event must not reach (Pusher's `socket_id` exclusion; client events' sender). */
  readonly exclude: string | undefined;
  /** Presence client events name their sender. */
  readonly userId: string | undefined;
}

/**
 * How a topic's data appears to Pusher subscribers (docs/pusher.md): data that is an object with a
 * string `event` is that event, its `data` passed as a string (JSON text when it is not one); any other
 * data is an event named `message` carrying the data's JSON text.
 */
export function pusherEventOf(value: unknown): PusherEvent {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const v = value as Record<string, unknown>;
    if (typeof v.event === 'string') {
      return {
        name: v.event,
        data: typeof v.data === 'string' ? v.data : JSON.stringify(v.data ?? null),
        exclude: typeof v.socket_id === 'string' ? v.socket_id : undefined,
        userId: typeof v.user_id === 'string' ? v.user_id : undefined,
      };
    }
  }
  return { name: 'message', data: JSON.stringify(value ?? null), exclude: undefined, userId: undefined };
}

/** Sends a frame to one uWS topic natively; whether any socket was subscribed. */
export type PusherFanout = (key: string, frame: string | Uint8Array) => boolean;

/**
 * The hub's third wire format. A publish to a topic with Pusher subscribers is framed once here and
 * handed to uWS for all of them; nothing runs per subscriber. Topics without Pusher subscribers never
 * get here. The frame needs the data's event name and data: a client event's data (JSON text of string
 * fields, as PusherChannels publishes it and brokers carry it) is read in place and copied
 * (EventDataScan); other data costs one decode and one encode per publish, paid only by topics Pusher
 * clients hold.
 */
export class PusherWire {
  private readonly scan = new EventDataScan();
  // The frame of the last scanned event, reused: uWS copies a frame during publish.
  private readonly out = new FrameBuffer(4096);
  private readonly socketIds = new TopicNames();

  constructor(
    private readonly apps: PusherApps,
    private readonly sockets: PusherSockets,
    private readonly fanout: PusherFanout,
  ) {}

  /** See EventDataScan.expect: the fields of a client event's data being written at [0, end) of `b`. */
  expectEvent(b: Buffer, end: number): StringFields {
    return this.scan.expect(b, end);
  }

  /** Fans `payload` out to the topic's Pusher subscribers; returns the frame's bytes. */
  deliver(state: TopicState, payload: Payload): number {
    const raw = payload.rawJsonBuffer;
    if (raw !== null && this.scan.data(raw, payload.rawFrom, payload.rawTo)) return this.deliverScanned(state, raw);
    // JSON data as a value (an HTTP event's own object: no stringify + parse per publish); other data
    // through its JSON text, which turns binary values into base64 strings as wsgate's JSON frames do.
    const ev = pusherEventOf(payload.isJson ? payload.data() : JSON.parse(payload.json()));
    const frame = frames.event(ev.name, this.channelOf(state.name), ev.data, ev.userId);
    this.send(state, ev.exclude === undefined ? undefined : this.sockets.get(ev.exclude), frame);
    return frame.length;
  }

  /**
   * A client event's data as received (EventDataScan found its string fields): the frame is those
   * spans copied around the channel name, as bytes uWS sends without converting a string. Same frame,
   * byte for byte apart from the escapes the sender chose, as frames.event of the decoded fields.
   */
  private deliverScanned(state: TopicState, raw: Buffer): number {
    const f = this.scan.fields;
    const channel = this.channelOf(state.name);
    const es = f.start[E_EVENT] as number;
    const ee = f.end[E_EVENT] as number;
    const ds = f.start[E_DATA] as number;
    const de = f.end[E_DATA] as number;
    const us = f.start[E_USER] as number;
    const ue = us < 0 ? us : (f.end[E_USER] as number);
    const b = this.out.reserve(40 + channel.length + ee - es + de - ds + ue - us);
    let p = writeAscii(b, 0, '{"event":');
    p = copyBytes(raw, es, ee, b, p);
    // Channel names are held to Pusher's charset (channels.ts): ASCII that needs no escaping.
    p = writeAscii(b, p, ',"channel":"');
    p = writeAscii(b, p, channel);
    p = writeAscii(b, p, '","data":');
    p = copyBytes(raw, ds, de, b, p);
    if (us >= 0) {
      p = writeAscii(b, p, ',"user_id":');
      p = copyBytes(raw, us, ue, b, p);
    }
    b[p++] = 0x7d; // }
    const ss = f.start[E_SOCKET] as number;
    // A plain socket id's bytes are its chars; interned, so finding the sender allocates nothing.
    this.send(state, ss < 0 ? undefined : this.sockets.get(this.socketIds.get(raw, ss + 1, (f.end[E_SOCKET] as number) - 1)), this.out.view(p));
    return p;
  }

  /** Sends a frame to the topic's Pusher subscribers but `excluded` (Pusher's socket_id exclusion). */
  private send(state: TopicState, excluded: PusherSocket | undefined, frame: string | Uint8Array): void {
    // uWS's ws.publish reaches every subscriber but the socket it is called on; from a socket with no
    // subscriptions at all it sends nothing (then that socket holds none of these anyway: app.publish).
    // Its result is no guide: it is also false when the excluded socket is the topic's only subscriber here.
    const conn = excluded?.getUserData();
    if (excluded !== undefined && conn !== undefined && !conn.closed && (conn.channels?.size ?? 0) > 0) excluded.publish(state.pusherKey, frame, false);
    else this.fanout(state.pusherKey, frame);
  }

  /**
   * A user joining or leaving a presence channel (session/join-leave.ts, presenceBy "user") is Pusher's
   * member_added / member_removed: outside the channel's sequence, so never in history or a cache
   * channel's last event. Other notices have no Pusher form.
   */
  notice(state: TopicState, notice: Notice): boolean {
    if (notice.op !== 'join' && notice.op !== 'leave') return false; // an epoch reset: Pusher has no positions
    const channel = this.channelOf(state.name);
    const entry = notice.p as { readonly user?: unknown; readonly info?: unknown };
    // Anonymous wsgate subscribers (no user) are connections, not Pusher members.
    if (channelKind(channel)?.presence !== true || typeof entry.user !== 'string' || entry.user === '') return false;
    const frame =
      notice.op === 'join'
        ? frames.internal('member_added', channel, { user_id: entry.user, user_info: entry.info ?? null })
        : frames.internal('member_removed', channel, { user_id: entry.user });
    return this.fanout(state.pusherKey, frame);
  }

  /** The topic's last message as the Pusher event a cache channel subscriber gets, or null. */
  lastFrame(state: TopicState, channel: string): string | null {
    const last = state.last;
    if (last === null || last.data.length === 0) return null;
    const ev = pusherEventOf(unpackr.unpack(last.data));
    return frames.event(ev.name, channel, ev.data, ev.userId);
  }

  /** Channel names are topics with one app, `<appId>:<channel>` with several. */
  private channelOf(topic: string): string {
    if (this.apps.size === 1) return topic;
    const colon = topic.indexOf(':');
    return colon < 0 ? topic : topic.slice(colon + 1);
  }
}
