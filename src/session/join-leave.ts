import type { ControlBus } from '../cluster/control-bus';
import type { Stats } from '../metrics/stats';
import type { PresenceEntry } from '../protocol/codec';
import type { Hub } from '../pubsub/hub';
import type { TopicRule } from '../rules/topic-rules';

type JoinLeaveOp = 'join' | 'leave';

/** A user's connections to one topic on this node (presenceBy "user"), and its pending departure. */
interface UserPresence {
  connections: number;
  leaving: NodeJS.Timeout | null;
  /** The entry announced on join, announced again on leave. */
  readonly entry: PresenceEntry;
}

const NOTICE = 'join_leave';

/**
 * Join and leave notices for topics whose rule has `joinLeave: true`: `{"op":"join"|"leave","t":…,"p":…}`
 * to the topic's subscribers on every node, encoded once per codec and fanned out natively (Hub.notice),
 * outside the topic's sequence. The node of the connection announces it: to its own subscribers at once
 * (before the joiner is subscribed, after the leaver is unsubscribed, so neither hears itself), and to
 * the other nodes over the control bus. A topic of n members where all join sends n² notices; with
 * `presenceBy: "user"` a user's first connection and last departure (after `presenceGrace`) are
 * announced, counted per node: a user connected through two nodes is announced by each.
 */
export class JoinLeave {
  private readonly users = new Map<string, Map<string, UserPresence>>();
  /** Leaves of closed connections, fanned out after the close handler (uWS must not publish inside it). */
  private readonly deferred: [string, PresenceEntry][] = [];
  private flushScheduled = false;

  constructor(
    private readonly hub: Hub,
    private readonly bus: ControlBus,
    private readonly stats: Stats,
  ) {
    bus.listen(NOTICE, (body) => {
      if (!Array.isArray(body) || (body[0] !== 'join' && body[0] !== 'leave') || typeof body[1] !== 'string' || !isEntry(body[2])) return;
      this.fanOut(body[0], body[1], body[2]);
    });
  }

  joined(topic: string, entry: PresenceEntry, rule: TopicRule): void {
    if (rule.presenceBy === 'client' || entry.user === '') return this.announce('join', topic, entry);
    let byUser = this.users.get(topic);
    if (byUser === undefined) this.users.set(topic, (byUser = new Map()));
    const u = byUser.get(entry.user);
    if (u === undefined) {
      byUser.set(entry.user, { connections: 1, leaving: null, entry });
      return this.announce('join', topic, entry);
    }
    u.connections++;
    // Back within the grace period: neither a leave nor a join.
    if (u.leaving !== null) {
      clearTimeout(u.leaving);
      u.leaving = null;
    }
  }

  /** `closing`: the connection is being closed (its leave is fanned out locally after the close handler). */
  left(topic: string, entry: PresenceEntry, rule: TopicRule, closing: boolean): void {
    if (rule.presenceBy === 'client' || entry.user === '') return this.announce('leave', topic, entry, closing);
    const byUser = this.users.get(topic);
    const u = byUser?.get(entry.user);
    if (byUser === undefined || u === undefined || --u.connections > 0) return;
    u.leaving = setTimeout(() => {
      byUser.delete(entry.user);
      if (byUser.size === 0) this.users.delete(topic);
      this.announce('leave', topic, u.entry);
    }, rule.presenceGrace).unref();
  }

  close(): void {
    for (const byUser of this.users.values()) for (const u of byUser.values()) if (u.leaving !== null) clearTimeout(u.leaving);
    this.users.clear();
  }

  private announce(op: JoinLeaveOp, topic: string, entry: PresenceEntry, later = false): void {
    this.bus.notify(NOTICE, [op, topic, entry]);
    if (!later) return this.fanOut(op, topic, entry);
    this.deferred.push([topic, entry]);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      for (const [t, e] of this.deferred.splice(0)) this.fanOut('leave', t, e);
    });
  }

  private fanOut(op: JoinLeaveOp, topic: string, entry: PresenceEntry): void {
    if (this.hub.notice(topic, { op, t: topic, p: entry })) this.stats.joinLeave[op]++;
  }
}

function isEntry(v: unknown): v is PresenceEntry {
  const e = v as PresenceEntry;
  return typeof v === 'object' && v !== null && typeof e.client === 'string' && typeof e.user === 'string';
}
