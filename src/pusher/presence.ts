import type { PusherMember } from './connection';

/** One user on a presence channel: their info and how many of this node's connections hold them. */
interface Held {
  info: unknown;
  connections: number;
}

/**
 * Members of presence channels, by topic then user: a user counts once however many connections
 * they have, so member_added goes out on their first connection and member_removed after their last.
 * Bounded by the connections that hold entries (one per subscription).
 */
export class PusherPresence {
  private readonly topics = new Map<string, Map<string, Held>>();

  /** Adds a connection's membership; true when the user was not on the channel before. */
  join(topic: string, member: PusherMember): boolean {
    let users = this.topics.get(topic);
    if (users === undefined) this.topics.set(topic, (users = new Map()));
    const held = users.get(member.userId);
    if (held !== undefined) {
      held.connections++;
      return false;
    }
    users.set(member.userId, { info: member.userInfo, connections: 1 });
    return true;
  }

  /** Removes a connection's membership; true when that was the user's last connection on the channel. */
  leave(topic: string, userId: string): boolean {
    const users = this.topics.get(topic);
    const held = users?.get(userId);
    if (users === undefined || held === undefined) return false;
    if (--held.connections > 0) return false;
    users.delete(userId);
    if (users.size === 0) this.topics.delete(topic);
    return true;
  }

  count(topic: string): number {
    return this.topics.get(topic)?.size ?? 0;
  }

  ids(topic: string): string[] {
    return [...(this.topics.get(topic)?.keys() ?? [])];
  }

  /** What pusher_internal:subscription_succeeded carries: `{presence:{ids,hash,count}}`. */
  snapshot(topic: string): { presence: { ids: string[]; hash: Record<string, unknown>; count: number } } {
    const users = this.topics.get(topic);
    const hash: Record<string, unknown> = {};
    if (users !== undefined) for (const [id, held] of users) hash[id] = held.info ?? null;
    return { presence: { ids: Object.keys(hash), hash, count: users?.size ?? 0 } };
  }
}
