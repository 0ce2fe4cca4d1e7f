import type { PresenceEntry } from '../protocol/codec';

/** Largest `info` (as JSON) carried in presence; larger ones are left out. */
export const MAX_INFO_BYTES = 1024;

/** `info` as presence carries it: a JSON object of bounded size, else nothing. */
export function presenceInfo(info: unknown): Readonly<Record<string, unknown>> | undefined {
  if (typeof info !== 'object' || info === null || Array.isArray(info)) return undefined;
  const json = JSON.stringify(info);
  return Buffer.byteLength(json) <= MAX_INFO_BYTES ? (info as Record<string, unknown>) : undefined;
}

/** This node's members of one topic: the first `maxPresence` listed, the rest only counted. */
class TopicMembers {
  readonly listed = new Map<string, PresenceEntry>();
  total = 0;
}

/**
 * The presence entries of this node's own connections. Cluster-wide answers combine every node's
 * registry (see session/presence.ts); a node keeps at most `maxPresence` entries per topic, so memory is
 * bounded by the rule, not by the audience.
 */
export class PresenceRegistry {
  private readonly topics = new Map<string, TopicMembers>();
  /** Members over all topics (listed or only counted), for the metric. */
  members = 0;

  join(topic: string, entry: PresenceEntry, maxListed: number): void {
    let m = this.topics.get(topic);
    if (m === undefined) this.topics.set(topic, (m = new TopicMembers()));
    m.total++;
    this.members++;
    if (m.listed.size < maxListed) m.listed.set(entry.client, entry);
  }

  /** Removes `client`'s entry; returns it when it was listed. */
  leave(topic: string, client: string): PresenceEntry | undefined {
    const m = this.topics.get(topic);
    if (m === undefined) return undefined;
    const entry = m.listed.get(client);
    m.listed.delete(client);
    m.total--;
    this.members--;
    if (m.total === 0) this.topics.delete(topic);
    return entry;
  }

  listed(topic: string): PresenceEntry[] {
    return [...(this.topics.get(topic)?.listed.values() ?? [])];
  }

  total(topic: string): number {
    return this.topics.get(topic)?.total ?? 0;
  }

  /** Distinct users among the listed entries. */
  users(topic: string): string[] {
    const users = new Set<string>();
    for (const e of this.topics.get(topic)?.listed.values() ?? []) users.add(e.user);
    return [...users];
  }
}
