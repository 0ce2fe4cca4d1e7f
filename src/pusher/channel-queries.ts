import type { ControlBus } from '../cluster/control-bus';
import { MAX_PAGE_LIMIT } from '../protocol/commands';
import { isTopicArray, MAX_COUNTED_TOPICS, type TopicQueries } from '../session/topic-queries';

/** What the REST door needs of presence: the user ids this node holds on a presence channel's topic. */
export interface PusherMembers {
  users(topic: string): string[];
}

const USERS_QUERY = 'pusher_users';
// Topics per users question and users a node lists per topic: one answer holds at most 20 × 1000 ids.
const USERS_CHUNK = 20;
export const MAX_USERS_PER_NODE = 1000;
/** Channels `GET /apps/<id>/channels` lists at most (Pusher's API has no paging). */
export const MAX_LISTED_CHANNELS = 10_000;

/**
 * The Pusher channel queries over the whole cluster, on the control bus: subscriber counts and topic
 * lists are wsgate's own (TopicQueries, summed over nodes); presence users are gathered as ids from
 * every node and merged, so a user connected to two nodes counts once.
 */
export class PusherChannelQueries {
  constructor(
    private readonly topics: TopicQueries,
    private readonly bus: ControlBus,
    members: PusherMembers,
  ) {
    // The topics come from another node: checked and bounded, as is the answer.
    bus.handle(USERS_QUERY, (body) => (isTopicArray(body) && body.length <= USERS_CHUNK ? body.map((t) => members.users(t).slice(0, MAX_USERS_PER_NODE)) : null));
  }

  /** Topics starting with `prefix` that have subscribers on any node, with their sums, in name order. */
  async active(prefix: string): Promise<{ readonly topic: string; readonly subscribers: number }[]> {
    const out: { topic: string; subscribers: number }[] = [];
    let cursor: string | null = '';
    while (cursor !== null && out.length < MAX_LISTED_CHANNELS) {
      const page = await this.topics.topics({ prefix, limit: Math.min(MAX_PAGE_LIMIT, MAX_LISTED_CHANNELS - out.length), cursor });
      out.push(...page.topics);
      cursor = page.cursor;
    }
    return out;
  }

  /** Subscribers of each topic over the cluster, whichever front door they came through. */
  subscribers(topics: readonly string[]): Promise<number[]> {
    return chunked(topics, MAX_COUNTED_TOPICS, (chunk) => this.topics.counts(chunk));
  }

  /** The distinct users of each presence topic over the cluster (this node's first). */
  users(topics: readonly string[]): Promise<string[][]> {
    return chunked(topics, USERS_CHUNK, async (chunk) => {
      const sets = chunk.map(() => new Set<string>());
      for (const answer of await this.bus.gather(USERS_QUERY, chunk)) {
        if (!Array.isArray(answer) || answer.length !== chunk.length) continue;
        answer.forEach((ids: unknown, i) => {
          if (Array.isArray(ids)) for (const id of ids) if (typeof id === 'string') sets[i]?.add(id);
        });
      }
      return sets.map((s) => [...s]);
    });
  }
}

/** Asks about `items` in chunks of `size` at once and joins the answers in order. */
async function chunked<T, R>(items: readonly T[], size: number, ask: (chunk: T[]) => Promise<R[]>): Promise<R[]> {
  const parts: Promise<R[]>[] = [];
  for (let i = 0; i < items.length; i += size) parts.push(ask(items.slice(i, i + size)));
  return (await Promise.all(parts)).flat();
}
