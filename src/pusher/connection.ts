import type { WebSocket } from 'uWebSockets.js';
import type { CommandBucketSlot } from '../guard/command-rate';
import type { AddressKey } from '../guard/upgrade-guard';
import type { DisconnectReason } from '../metrics/stats';
import type { Member } from '../session/presence';
import type { PusherApp } from './apps';

/**
 * Per-connection state of a Pusher client (uWS user data: at most 15 fields, see server/connection.ts).
 * Channels, members and the client-event bucket are made on first use.
 */
export interface PusherConnection extends CommandBucketSlot {
  readonly app: PusherApp;
  readonly socketId: string;
  readonly addressKey: AddressKey;
  /** Subscribed channels → their topic; null until the first subscribe. */
  channels: Map<string, string> | null;
  /** This connection's member entry per presence channel (from its channel_data). */
  members: Map<string, Member> | null;
  /** The user of a `pusher:signin`, for terminate_connections and client events. */
  userId: string | null;
  /** A refusal to send after open (unknown app key, protocol), then close: uWS cannot close before open. */
  refusal: { code: number; message: string } | null;
  closeReason: DisconnectReason | null;
  closed: boolean;
  /** The activity sweep's clock at the last frame received (seconds; see activity-sweep.ts). */
  seenAt: number;
  /** The sweep's clock when it sent pusher:ping and awaits any frame; -1 when none is awaited. */
  pingAt: number;
}

export function newPusherConnection(app: PusherApp, socketId: string, addressKey: AddressKey, refusal: PusherConnection['refusal'], now: number): PusherConnection {
  return {
    app,
    socketId,
    addressKey,
    channels: null,
    members: null,
    userId: null,
    refusal,
    closeReason: null,
    closed: false,
    seenAt: now,
    pingAt: -1,
    cmd: null,
  };
}

export type PusherSocket = WebSocket<PusherConnection>;

/** The Pusher sockets of this node by socket id: event exclusion and terminate_connections find them here. */
export type PusherSockets = Map<string, PusherSocket>;
