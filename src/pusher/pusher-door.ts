import type { TemplatedApp } from 'uWebSockets.js';
import type { Broker } from '../broker/broker';
import type { Config } from '../config/schema';
import type { UpgradeGuard } from '../guard/upgrade-guard';
import type { ControlBus } from '../cluster/control-bus';
import type { Logger } from '../log';
import type { FixedHistogram } from '../metrics/histogram';
import type { Stats } from '../metrics/stats';
import type { Hub } from '../pubsub/hub';
import { parseTopicRules, type TopicRuleConfig } from '../rules/topic-rules';
import type { FaultSink } from '../server/contain';
import { spreadOver } from '../server/drain';
import { PusherApps, parsePusherApps } from './apps';
import { ActivitySweep } from './activity-sweep';
import { channelKind } from './channels';
import { PusherCode } from './frames';
import { pusherLimits } from './limits';
import type { Presence } from '../session/presence';
import type { PusherSockets } from './connection';
import { pusherBehavior } from './pusher-behavior';
import type { Outboxed } from '../hooks/occupancy';
import { PusherWebhooks, type PusherWebhookEvent } from './pusher-webhooks';
import { PusherWire } from './pusher-wire';
import { registerPusherRest } from './rest-routes';
import { PusherChannelQueries } from './channel-queries';
import type { ServerControl } from '../session/server-control';
import type { TopicQueries } from '../session/topic-queries';

/**
 * Built-in rules for Pusher's channel kinds, ahead of the configured ones (the first matching rule
 * wins): presence channels track users (session presence, presenceBy "user": member_added on a user's
 * first connection in the cluster, member_removed after the last, at once), cache channels keep their
 * last event.
 */
export function pusherRules(config: Config): TopicRuleConfig[] {
  const apps = parsePusherApps(config.pusherApps) ?? [];
  if (apps.length === 0) return [];
  const scoped = (prefix: string) => (apps.length === 1 ? [`${prefix}*`] : apps.map((a) => `${a.id}:${prefix}*`));
  // Listed entries are per connection; a user with several connections takes several.
  const presence = { presence: true, joinLeave: true, presenceBy: 'user', presenceGrace: 0, maxPresence: config.pusherMaxPresenceMembers * 4 };
  const rules = parseTopicRules([
    ...scoped('presence-cache-').map((match) => ({ match, ...presence, lastMessage: true })),
    ...scoped('presence-').map((match) => ({ match, ...presence })),
    ...['cache-', 'private-cache-', 'private-encrypted-cache-'].flatMap(scoped).map((match) => ({ match, lastMessage: true })),
  ]);
  return Array.isArray(rules) ? rules : [];
}

export interface PusherDoorDeps {
  readonly config: Config;
  readonly hub: Hub;
  readonly broker: Broker;
  readonly stats: Stats;
  readonly guard: UpgradeGuard;
  readonly log: Logger;
  readonly fault: FaultSink;
  readonly isDraining: () => boolean;
  readonly webhookDuration: FixedHistogram;
  /** Session presence: Pusher presence channels are its presenceBy-"user" topics. */
  readonly presence: Presence;
  /** Cluster questions (channel users). */
  readonly bus: ControlBus;
  /** Topic lists and subscriber counts over the cluster, shared with wsgate's own API. */
  readonly queries: TopicQueries;
  /** Server-side control over the cluster: terminate_connections. */
  readonly control: ServerControl;
}

// How long queued Pusher webhooks may take to leave when the node shuts down.
const WEBHOOK_CLOSE_GRACE_MS = 2000;

/** The Pusher Channels front door: `/app/<key>` sockets and the signed `/apps/<id>/…` API on one uWS app. */
export class PusherDoor {
  readonly sockets: PusherSockets = new Map();
  private readonly sweep: ActivitySweep;
  private readonly webhooks: PusherWebhooks | null;
  private readonly apps: PusherApps;

  constructor(
    app: TemplatedApp,
    deps: PusherDoorDeps,
  ) {
    const { config, hub } = deps;
    const list = parsePusherApps(config.pusherApps) ?? [];
    const apps = new PusherApps(list);
    this.apps = apps;
    this.webhooks =
      config.pusherWebhookUrl === ''
        ? null
        : new PusherWebhooks({ url: config.pusherWebhookUrl, maxQueue: config.webhookMaxQueue, timeoutMs: config.proxyTimeout }, list, deps.stats, deps.webhookDuration, deps.log);
    const limits = pusherLimits(config);
    const wire = new PusherWire(apps, this.sockets, (key, frame) => app.publish(key, frame, false));
    hub.setPusherWire(wire);
    this.sweep = new ActivitySweep(this.sockets, limits.activityTimeout, limits.pongTimeout);
    const webhooks = this.webhooks;
    if (webhooks !== null) {
      // member_added / member_removed once per cluster: sent by the node that reports the change.
      deps.presence.joinLeave.onMemberChange((op, topic, entry, reports) => {
        const at = reports ? apps.locate(topic) : null;
        if (at !== null && channelKind(at.channel)?.presence === true) webhooks.emit(at.app, { name: op === 'join' ? 'member_added' : 'member_removed', channel: at.channel, user_id: entry.user });
      });
    }
    app.ws('/app/:key', pusherBehavior({ ...deps, apps, limits, wire, sockets: this.sockets, clock: this.sweep, webhooks }));
    const channelQueries = new PusherChannelQueries(deps.queries, deps.bus, { users: (topic) => deps.presence.registry.users(topic) });
    registerPusherRest(app, { ...deps, apps, limits, channelQueries });
    deps.control.attach((target, action) => ('pusherUser' in target && action.kind === 'disconnect' ? this.terminate(target.pusherApp, target.pusherUser) : 0));
  }

  /** Closes this node's connections signed in as `user` of app `appId` with 4009, as Pusher does; how many. */
  private terminate(appId: string, user: string): number {
    let n = 0;
    for (const ws of this.sockets.values()) {
      const conn = ws.getUserData();
      if (conn.app.id !== appId || conn.userId !== user || conn.closed) continue;
      conn.closeReason = 'terminated';
      ws.end(PusherCode.Terminated, 'connection terminated by the application');
      n++;
    }
    return n;
  }

  /**
   * Pusher's channel_occupied / channel_vacated from the gateway's occupancy (hooks/occupancy.ts): once
   * per cluster, decided by its ledger. A topic is occupied while anyone (Pusher or wsgate) subscribes it.
   */
  readonly occupancyChanged = (change: 'occupied' | 'vacated', topic: string, outboxed?: Outboxed): Promise<unknown> | void => {
    const webhooks = this.webhooks;
    const at = webhooks === null ? null : this.apps.locate(topic);
    if (webhooks === null || at === null || channelKind(at.channel) === null) return;
    const event: PusherWebhookEvent = { name: change === 'occupied' ? 'channel_occupied' : 'channel_vacated', channel: at.channel };
    // Kept in the ledger's outbox (Redis): the same id from whichever node sends it, settled once it left.
    if (outboxed === undefined) return webhooks.emit(at.app, event);
    return new Promise((settled) => webhooks.emit(at.app, event, outboxed.id, settled));
  };

  /** Whether Pusher webhooks are configured (then the gateway follows occupancy for them). */
  get wantsOccupancy(): boolean {
    return this.webhooks !== null;
  }

  /** Drain: every Pusher client gets 4200 (reconnect now), spread over the window like wsgate's 1012. */
  drain(windowMs: number): Promise<void> {
    return spreadOver(this.sockets.values(), windowMs, (ws) => {
      const conn = ws.getUserData();
      if (conn.closed) return;
      conn.closeReason = 'drain';
      ws.end(PusherCode.Reconnect, 'server is draining; reconnect');
    });
  }

  async close(): Promise<void> {
    this.sweep.stop();
    await this.webhooks?.close(WEBHOOK_CLOSE_GRACE_MS);
  }
}
