import type { Config } from '../config/schema';

/** Pusher's documented limits (configurable), and the activity timeout told to clients. */
export interface PusherLimits {
  readonly clientEvents: boolean;
  readonly clientEventsPerSecond: number;
  /** Bytes of one event's data (Pusher: 10 KB). */
  readonly maxEventBytes: number;
  /** Channels one REST event may name (Pusher: 100). */
  readonly maxChannelsPerEvent: number;
  /** Events in one batch_events call (Pusher: 10). */
  readonly maxBatchSize: number;
  /** Users on one presence channel, cluster-wide (Pusher: 100). */
  readonly maxPresenceMembers: number;
  /** Seconds of silence after which pusher-js pings (told in connection_established). */
  readonly activityTimeout: number;
  /** Seconds a connection has to answer the server's pusher:ping (any frame counts) before 4201. */
  readonly pongTimeout: number;
}

export const pusherLimits = (config: Config): PusherLimits => ({
  clientEvents: config.pusherClientEvents,
  clientEventsPerSecond: config.pusherClientEventsPerSecond,
  maxEventBytes: config.pusherMaxEventBytes,
  maxChannelsPerEvent: config.pusherMaxChannelsPerEvent,
  maxBatchSize: config.pusherMaxBatchSize,
  maxPresenceMembers: config.pusherMaxPresenceMembers,
  activityTimeout: config.pusherActivityTimeout,
  pongTimeout: config.pusherPongTimeout,
});
