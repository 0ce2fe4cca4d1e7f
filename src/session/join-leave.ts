import type { ControlBus } from '../cluster/control-bus';
import type { Stats } from '../metrics/stats';
import type { PresenceEntry } from '../protocol/codec';
import type { Hub } from '../pubsub/hub';
import type { TopicRule } from '../rules/topic-rules';

export type JoinLeaveOp = 'join' | 'leave';

/**
 * Told of each cluster-wide join or leave of a user (presenceBy "user") as this node's subscribers see
 * it. `reports` is true on exactly one node per change (barring the race described at JoinLeave): the
 * node whose own connection made it, or for a dead node's users the lowest live node.
 */
export type MemberListener = (op: JoinLeaveOp, topic: string, entry: PresenceEntry, reports: boolean) => void;

/**
 * One user on one topic (presenceBy "user") as this node sees the cluster: the nodes holding it (this
 * one included while it has connections or is within the grace), this node's connections and pending
 * departure.
 */
interface UserPresence {
  readonly holders: Set<string>;
  connections: number;
  leaving: NodeJS.Timeout | null;
  /** The entry announced on join, announced again on leave. */
  readonly entry: PresenceEntry;
}

/** A connection's join/leave, fanned out by every node that receives it. */
const NOTICE = 'join_leave';
/** Wire `[topic, entry, holding]`: the sending node gained (true) or, after its grace, lost a user. */
const HOLDS = 'join_leave_holds';

/**
 * Join and leave notices for topics whose rule has `joinLeave: true`: `{"op":"join"|"leave","t":…,"p":…}`
 * to the topic's subscribers, encoded once per codec and fanned out natively (Hub.notice), outside the
 * topic's sequence. A topic of n members where all join sends n² notices.
 *
 * `presenceBy: "client"`: the node of the connection announces it to its own subscribers at once (before
 * the joiner is subscribed, after the leaver is unsubscribed, so neither hears itself) and to the other
 * nodes over the control bus.
 *
 * `presenceBy: "user"`, cluster-wide: a node tells the others only when it gains a user (first connection)
 * or loses it (last connection gone and `presenceGrace` passed). Every node keeps, per (topic, user), the
 * set of nodes holding the user, and tells its own subscribers of the set's transitions: empty → held is
 * a join, held → empty (a release, or the node-TTL expiry of a dead node) a leave. So each node's
 * subscribers see joins and leaves strictly alternating, whichever nodes the user uses, and a leave is
 * never missing: every node announces it when its own set empties. The unavoidable race: two nodes
 * gaining the same user at the same instant each announce to their own subscribers only, so still one
 * join per node; a node whose grace ends just as another node gains the user (messages crossing) may
 * show its subscribers a leave and a join again, the other node nothing. Beyond that it is best effort,
 * like the bus: a control message dropped while the broker is down is lost (a release lost that way
 * keeps the user held until its node is gone). A node that starts, or comes back after it was declared
 * gone, is told by each node what it holds (one message per held user). Entries exist only
 * for live members of presenceBy-user topics, so the state is bounded by them.
 */
export class JoinLeave {
  private readonly users = new Map<string, Map<string, UserPresence>>();
  /** Leaves of closed connections, fanned out after the close handler (uWS must not publish inside it). */
  private readonly deferred: [string, PresenceEntry][] = [];
  private flushScheduled = false;
  private listener: MemberListener | null = null;

  constructor(
    private readonly hub: Hub,
    private readonly bus: ControlBus,
    private readonly stats: Stats,
  ) {
    bus.listen(NOTICE, (body) => {
      if (!Array.isArray(body) || (body[0] !== 'join' && body[0] !== 'leave') || typeof body[1] !== 'string' || !isEntry(body[2])) return;
      this.fanOut(body[0], body[1], body[2]);
    });
    bus.listen(HOLDS, (body, from) => {
      if (!Array.isArray(body) || typeof body[0] !== 'string' || !isEntry(body[1]) || typeof body[2] !== 'boolean') return;
      if (body[2]) this.gain(body[0], body[1], from);
      else this.release(body[0], body[1].user, from, false);
    });
    // A node new to this one (started, or back after it was gone) learns what this one holds.
    bus.onNodeSeen((node) => {
      for (const [topic, byUser] of this.users) for (const u of byUser.values()) if (u.holders.has(bus.nodeId)) bus.notify(HOLDS, [topic, u.entry, true], node);
    });
    bus.onNodeGone((node) => {
      const reports = bus.leads;
      for (const [topic, byUser] of this.users) for (const user of [...byUser.keys()]) this.release(topic, user, node, reports);
    });
  }

  /** Sets the one listener told of user joins and leaves (the Pusher front door's member events). */
  onMemberChange(listener: MemberListener): void {
    this.listener = listener;
  }

  /** The users on a presenceBy-"user" topic anywhere in the cluster, as this node knows them, with their entries. */
  members(topic: string): IterableIterator<PresenceEntry> | undefined {
    const byUser = this.users.get(topic);
    return byUser === undefined ? undefined : mapEntries(byUser.values());
  }

  /** How many users a presenceBy-"user" topic has in the cluster. */
  memberCount(topic: string): number {
    return this.users.get(topic)?.size ?? 0;
  }

  /** Whether `user` is on a presenceBy-"user" topic anywhere in the cluster. */
  has(topic: string, user: string): boolean {
    return this.users.get(topic)?.has(user) === true;
  }

  joined(topic: string, entry: PresenceEntry, rule: TopicRule): void {
    if (rule.presenceBy === 'client' || entry.user === '') return this.announce('join', topic, entry);
    const u = this.gain(topic, entry, this.bus.nodeId);
    if (u.connections++ > 0) return;
    if (u.leaving !== null) {
      // Back within the grace period: still held, so neither a leave nor a join.
      clearTimeout(u.leaving);
      u.leaving = null;
    } else this.bus.notify(HOLDS, [topic, entry, true]);
  }

  /** `closing`: the connection is being closed (its leave is fanned out locally after the close handler). */
  left(topic: string, entry: PresenceEntry, rule: TopicRule, closing: boolean): void {
    if (rule.presenceBy === 'client' || entry.user === '') return this.announce('leave', topic, entry, closing);
    const u = this.users.get(topic)?.get(entry.user);
    if (u === undefined || --u.connections > 0) return;
    u.leaving = setTimeout(() => {
      u.leaving = null;
      this.bus.notify(HOLDS, [topic, u.entry, false]);
      this.release(topic, entry.user, this.bus.nodeId, true);
    }, rule.presenceGrace).unref();
  }

  close(): void {
    for (const byUser of this.users.values()) for (const u of byUser.values()) if (u.leaving !== null) clearTimeout(u.leaving);
    this.users.clear();
  }

  /** `node` holds the user: a join for this node's subscribers if no node did. */
  private gain(topic: string, entry: PresenceEntry, node: string): UserPresence {
    let byUser = this.users.get(topic);
    if (byUser === undefined) this.users.set(topic, (byUser = new Map()));
    let u = byUser.get(entry.user);
    if (u === undefined) byUser.set(entry.user, (u = { holders: new Set(), connections: 0, leaving: null, entry }));
    if (u.holders.size === 0) {
      this.fanOut('join', topic, u.entry);
      this.listener?.('join', topic, u.entry, node === this.bus.nodeId);
    }
    u.holders.add(node);
    return u;
  }

  /** `node` no longer holds the user: a leave for this node's subscribers if no node does. */
  private release(topic: string, user: string, node: string, reports: boolean): void {
    const byUser = this.users.get(topic);
    const u = byUser?.get(user);
    if (byUser === undefined || u === undefined || !u.holders.delete(node) || u.holders.size > 0) return;
    byUser.delete(user);
    if (byUser.size === 0) this.users.delete(topic);
    this.fanOut('leave', topic, u.entry);
    this.listener?.('leave', topic, u.entry, reports);
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

function* mapEntries(users: Iterable<UserPresence>): IterableIterator<PresenceEntry> {
  for (const u of users) yield u.entry;
}

function isEntry(v: unknown): v is PresenceEntry {
  const e = v as PresenceEntry;
  return typeof v === 'object' && v !== null && typeof e.client === 'string' && typeof e.user === 'string';
}
