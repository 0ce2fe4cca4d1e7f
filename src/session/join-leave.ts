import type { ControlBus } from '../cluster/control-bus';
import { Holdings } from '../cluster/holdings';
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

/** Holdings kinds: a user a node holds on a topic (presenceBy "user"), a connection on a topic (presenceBy "client"). */
const USER = 'u';
const CLIENT = 'c';
/** Holdings keys: `<topic>\0<user or client>` (a topic never contains NUL). */
const keyOf = (topic: string, id: string): string => topic + '\0' + id;
const topicOf = (key: string): string => key.slice(0, key.indexOf('\0'));

/**
 * Join and leave notices for topics whose rule has `joinLeave: true`: `{"op":"join"|"leave","t":…,"p":…}`
 * to the topic's subscribers, encoded once per codec and fanned out natively (Hub.notice), outside the
 * topic's sequence. A topic of n members where all join sends n² notices.
 *
 * `presenceBy: "client"`: the node of the connection announces it to its own subscribers at once (before
 * the joiner is subscribed, after the leaver is unsubscribed, so neither hears itself); the other nodes
 * learn it as a change of the node's holdings (below) and announce it to theirs.
 *
 * `presenceBy: "user"`, cluster-wide: a node tells the others only when it gains a user (first connection)
 * or loses it (last connection gone and `presenceGrace` passed). Every node keeps, per (topic, user), the
 * set of nodes holding the user, and tells its own subscribers of the set's transitions: empty → held is
 * a join, held → empty (a release, or the node-TTL expiry of a dead node) a leave. So each node's
 * subscribers see joins and leaves strictly alternating, whichever nodes the user uses, and a leave is
 * never missing: every node announces it when its own set empties. The unavoidable race: two nodes
 * gaining the same user at the same instant each announce to their own subscribers only, so still one
 * join per node; a node whose grace ends just as another node gains the user (messages crossing) may
 * show its subscribers a leave and a join again, the other node nothing.
 *
 * What each node holds (users, connections) is shared through Holdings, which repairs any lost change
 * within a heartbeat period once the nodes hear each other (a node that was cut off, a broker restart):
 * the repair is announced like the change itself. Entries exist only for live members of joinLeave
 * topics, so the state is bounded by them.
 */
export class JoinLeave {
  private readonly users = new Map<string, Map<string, UserPresence>>();
  /** Leaves of closed connections, fanned out after the close handler (uWS must not publish inside it). */
  private readonly deferred: [string, PresenceEntry][] = [];
  private flushScheduled = false;
  private listener: MemberListener | null = null;
  readonly holdings: Holdings;

  constructor(
    private readonly hub: Hub,
    private readonly bus: ControlBus,
    private readonly stats: Stats,
  ) {
    const holdings = (this.holdings = new Holdings(bus));
    // Who reports (member webhooks) a change another node's holdings show: that node did, as it happened,
    // except when the node left (died, or was cut off) or came back: then the lowest live node.
    holdings.register(USER, {
      added: (node, key, entry, cause) => isEntry(entry) && this.gain(topicOf(key), entry, node, cause === 'return' && bus.leads),
      removed: (node, key, entry, cause) => isEntry(entry) && this.release(topicOf(key), entry.user, node, cause === 'gone' && bus.leads),
    });
    holdings.register(CLIENT, {
      added: (_node, key, entry) => isEntry(entry) && this.fanOut('join', topicOf(key), entry),
      removed: (_node, key, entry) => isEntry(entry) && this.fanOut('leave', topicOf(key), entry),
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
    const u = this.gain(topic, entry, this.bus.nodeId, true);
    if (u.connections++ > 0) return;
    if (u.leaving !== null) {
      // Back within the grace period: still held, so neither a leave nor a join.
      clearTimeout(u.leaving);
      u.leaving = null;
    } else this.holdings.add(USER, keyOf(topic, entry.user), u.entry);
  }

  /** `closing`: the connection is being closed (its leave is fanned out locally after the close handler). */
  left(topic: string, entry: PresenceEntry, rule: TopicRule, closing: boolean): void {
    if (rule.presenceBy === 'client' || entry.user === '') return this.announce('leave', topic, entry, closing);
    const u = this.users.get(topic)?.get(entry.user);
    if (u === undefined || --u.connections > 0) return;
    u.leaving = setTimeout(() => {
      u.leaving = null;
      this.holdings.delete(USER, keyOf(topic, entry.user));
      this.release(topic, entry.user, this.bus.nodeId, true);
    }, rule.presenceGrace).unref();
  }

  close(): void {
    for (const byUser of this.users.values()) for (const u of byUser.values()) if (u.leaving !== null) clearTimeout(u.leaving);
    this.users.clear();
  }

  /** `node` holds the user: a join for this node's subscribers if no node did (`reports`: see MemberListener). */
  private gain(topic: string, entry: PresenceEntry, node: string, reports: boolean): UserPresence {
    let byUser = this.users.get(topic);
    if (byUser === undefined) this.users.set(topic, (byUser = new Map()));
    let u = byUser.get(entry.user);
    if (u === undefined) byUser.set(entry.user, (u = { holders: new Set(), connections: 0, leaving: null, entry }));
    if (u.holders.size === 0) {
      this.fanOut('join', topic, u.entry);
      this.listener?.('join', topic, u.entry, reports);
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
    if (op === 'join') this.holdings.add(CLIENT, keyOf(topic, entry.client), entry);
    else this.holdings.delete(CLIENT, keyOf(topic, entry.client));
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
