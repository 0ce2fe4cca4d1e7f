import type { TopicPatterns } from '../auth/topic-patterns';
import type { ControlBus } from '../cluster/control-bus';
import type { PresenceEntry, PresenceStats } from '../protocol/codec';
import { ErrorCode, GatewayError } from '../protocol/codes';
import type { Hub } from '../pubsub/hub';
import { PresenceRegistry, presenceInfo } from '../presence/presence-registry';
import type { TopicRule } from '../rules/topic-rules';
import type { Outcome } from './topic-queries';
import { JoinLeave } from './join-leave';
import type { Stats } from '../metrics/stats';

/** Who a subscription belongs to, as presence shows it. */
export interface Member {
  readonly client: string;
  /** The token's `sub`, undefined when anonymous. */
  readonly user: string | undefined;
  /** The token's `info` claim, if any (kept only when it is a bounded JSON object). */
  readonly info: unknown;
}

/** What one node answers: its listed entries (or users) and how many members it has. */
type NodeList = { readonly entries: PresenceEntry[]; readonly total: number };
type NodeStats = { readonly users: string[]; readonly listed: number; readonly total: number };

const LIST = 'presence';
const STATS = 'presence_stats';

/**
 * Presence for topics whose rule has `presence: true`: each subscription is an entry. The node keeps
 * its own connections' entries (PresenceRegistry); questions are asked of every node over the control
 * bus and the answers combined, so any node answers for the cluster and a node that died stops counting
 * once it misses its heartbeats (--node-ttl). Topics without presence pay nothing: subscribe and leave
 * check one flag of the topic's rule.
 */
export class Presence {
  readonly registry = new PresenceRegistry();
  /** Join/leave notices, and for presenceBy-"user" topics the cluster's users (the Pusher door's member list). */
  readonly joinLeave: JoinLeave;

  constructor(
    private readonly hub: Hub,
    private readonly bus: ControlBus,
    stats: Stats,
  ) {
    this.joinLeave = new JoinLeave(hub, bus, stats);
    bus.handle(LIST, (topic) => (typeof topic === 'string' ? { entries: this.registry.listed(topic), total: this.registry.total(topic) } : null));
    bus.handle(STATS, (topic) =>
      typeof topic === 'string' ? { users: this.registry.users(topic), listed: this.registry.listed(topic).length, total: this.registry.total(topic) } : null,
    );
  }

  /** A subscription to a topic whose rule tracks members was added (before the socket is subscribed). */
  joined(member: Member, topic: string, rule: TopicRule): void {
    const entry = entryOf(member);
    if (rule.presence) this.registry.join(topic, entry, rule.maxPresence);
    if (rule.joinLeave) this.joinLeave.joined(topic, entry, rule);
  }

  /** A subscription to a topic whose rule tracks members ended: unsubscribed, or `closing` with its connection. */
  left(member: Member, topic: string, rule: TopicRule, closing: boolean): void {
    if (rule.presence) this.registry.leave(topic, member.client);
    if (rule.joinLeave) this.joinLeave.left(topic, entryOf(member), rule, closing);
  }

  close(): void {
    this.joinLeave.close();
  }

  /** The listed members across the cluster, at most the rule's maxPresence. */
  list(readable: TopicPatterns | null, topic: string): Outcome<{ presence: PresenceEntry[] }> {
    const rule = this.check(readable, topic);
    if (rule instanceof GatewayError) return rule;
    return this.bus.gather(LIST, topic).then((answers) => {
      const presence: PresenceEntry[] = [];
      for (const a of answers) if (isNodeList(a)) for (const e of a.entries) if (presence.length < rule.maxPresence) presence.push(e);
      return { presence };
    });
  }

  /** Connections and distinct users (among listed members) across the cluster, and how many are unlisted. */
  stats(readable: TopicPatterns | null, topic: string): Outcome<PresenceStats> {
    const rule = this.check(readable, topic);
    if (rule instanceof GatewayError) return rule;
    return this.bus.gather(STATS, topic).then((answers) => {
      const users = new Set<string>();
      let clients = 0;
      let listed = 0;
      for (const a of answers) {
        if (!isNodeStats(a)) continue;
        clients += a.total;
        listed += a.listed;
        for (const u of a.users) users.add(u);
      }
      return { clients, users: users.size, unlisted: clients - Math.min(listed, rule.maxPresence) };
    });
  }

  private check(readable: TopicPatterns | null, topic: string): TopicRule | GatewayError {
    if (readable !== null && !readable.allows(topic)) return new GatewayError(ErrorCode.Forbidden, 'token does not allow subscribing to this topic');
    const rule = this.hub.ruleOf(topic);
    if (!rule.presence) return new GatewayError(ErrorCode.PresenceDisabled, 'this topic has no presence (see the topic rules)');
    return rule;
  }
}

function entryOf(member: Member): PresenceEntry {
  const info = presenceInfo(member.info);
  return info === undefined ? { client: member.client, user: member.user ?? '' } : { client: member.client, user: member.user ?? '', info };
}

function isNodeList(v: unknown): v is NodeList {
  const a = v as NodeList;
  return typeof v === 'object' && v !== null && Array.isArray(a.entries) && typeof a.total === 'number';
}

function isNodeStats(v: unknown): v is NodeStats {
  const a = v as NodeStats;
  return typeof v === 'object' && v !== null && Array.isArray(a.users) && typeof a.total === 'number' && typeof a.listed === 'number';
}
