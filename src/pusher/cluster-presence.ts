import type { ControlBus } from '../cluster/control-bus';
import type { PusherPresence } from './presence';

const KIND = 'pusher_presence';

/** A presence channel's members over every live node, one entry per user. */
export interface PresenceView {
  /** What pusher_internal:subscription_succeeded carries. */
  readonly snapshot: { presence: { ids: string[]; hash: Record<string, unknown>; count: number } };
  /** Users some other node holds (whatever this node holds). */
  readonly elsewhere: ReadonlySet<string>;
}

/**
 * Cluster-wide Pusher presence, built on the control bus (cluster/control-bus.ts): each node keeps its own
 * connections' members (PusherPresence) and answers for them; a subscriber's member list, and whether a
 * user's first or last connection on this node is their first or last in the cluster, come from asking
 * every live node. A node that dies stops answering after its heartbeats stop (--node-ttl).
 */
export class ClusterPresence {
  constructor(
    local: PusherPresence,
    private readonly bus: ControlBus,
  ) {
    bus.handle(KIND, (topic) => (typeof topic === 'string' ? local.snapshot(topic).presence.hash : null));
  }

  async view(topic: string): Promise<PresenceView> {
    const answers = await this.bus.gather(KIND, topic);
    const members = new Map<string, unknown>();
    const elsewhere = new Set<string>();
    // The bus lists this node's answer first.
    answers.forEach((answer, i) => {
      if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) return;
      for (const [id, info] of Object.entries(answer as Record<string, unknown>)) {
        if (!members.has(id)) members.set(id, info);
        if (i > 0) elsewhere.add(id);
      }
    });
    const hash = Object.fromEntries(members);
    return { snapshot: { presence: { ids: [...members.keys()], hash, count: members.size } }, elsewhere };
  }
}
