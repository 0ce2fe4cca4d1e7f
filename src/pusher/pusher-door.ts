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
import { ClusterPresence } from './cluster-presence';
import { PusherCode } from './frames';
import { pusherLimits } from './limits';
import { PusherPresence } from './presence';
import { type PusherSockets, pusherBehavior } from './pusher-behavior';
import { PusherWebhooks } from './pusher-webhooks';
import { PusherWire } from './pusher-wire';
import { registerPusherRest } from './rest-routes';
import { PusherChannelQueries } from './channel-queries';
import type { ServerControl } from '../session/server-control';
import type { TopicQueries } from '../session/topic-queries';

const CACHE_PREFIXES = ['cache-', 'private-cache-', 'private-encrypted-cache-', 'presence-cache-'];

/**
 * Topic rules that give Pusher cache channels their last event, ahead of the configured ones (a cache
 * channel keeps its last event whatever else a rule says about it).
 */
export function pusherCacheRules(config: Config): TopicRuleConfig[] {
  const apps = parsePusherApps(config.pusherApps) ?? [];
  if (apps.length === 0) return [];
  const prefixes = apps.length === 1 ? CACHE_PREFIXES : apps.flatMap((a) => CACHE_PREFIXES.map((p) => `${a.id}:${p}`));
  const rules = parseTopicRules(prefixes.map((p) => ({ match: `${p}*`, lastMessage: true })));
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
  /** Cluster-wide presence asks every node over it. */
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

  constructor(
    app: TemplatedApp,
    deps: PusherDoorDeps,
  ) {
    const { config, hub } = deps;
    const list = parsePusherApps(config.pusherApps) ?? [];
    const apps = new PusherApps(list);
    this.webhooks =
      config.pusherWebhookUrl === ''
        ? null
        : new PusherWebhooks({ url: config.pusherWebhookUrl, maxQueue: config.webhookMaxQueue, timeoutMs: config.proxyTimeout }, list, deps.stats, deps.webhookDuration, deps.log);
    const limits = pusherLimits(config);
    const presence = new PusherPresence();
    const wire = new PusherWire(apps, this.sockets, (key, frame) => void app.publish(key, frame, false));
    hub.setPusherWire(wire);
    this.sweep = new ActivitySweep(this.sockets, limits.activityTimeout, limits.pongTimeout);
    const clusterPresence = new ClusterPresence(presence, deps.bus);
    app.ws('/app/:key', pusherBehavior({ ...deps, apps, limits, wire, presence, clusterPresence, sockets: this.sockets, clock: this.sweep, webhooks: this.webhooks }));
    const channelQueries = new PusherChannelQueries(deps.queries, deps.bus, { users: (topic) => presence.ids(topic) });
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
