import type { TopicPatterns } from '../auth/topic-patterns';
import type { Broker, HistoryPage } from '../broker/broker';
import type { ControlBus } from '../cluster/control-bus';
import { ErrorCode, GatewayError } from '../protocol/codes';
import { MAX_PAGE_LIMIT, type StreamPosition } from '../protocol/commands';
import { readLocalHistory } from '../pubsub/history-read';
import type { Hub } from '../pubsub/hub';

/** A value now, or later from the broker: front doors settle both the same way. */
export type Outcome<T> = T | GatewayError | Promise<T | GatewayError>;

export interface TopicListRequest {
  readonly prefix: string;
  readonly limit: number;
  /** List topics after this one (the previous page's `cursor`); '' from the start. */
  readonly cursor: string;
}

/** One page of active topics, in name order, with subscribers summed over the cluster. */
export interface TopicList {
  readonly topics: readonly { readonly topic: string; readonly subscribers: number }[];
  /** Pass as `cursor` for the next page; null when this was the last. */
  readonly cursor: string | null;
}

/** What one node answers to a topic-list query: its first `limit` matching topics, and whether it has more. */
type NodeTopics = { readonly topics: [string, number][]; readonly more: boolean };

const TOPICS_QUERY = 'topics';
const COUNTS_QUERY = 'topic_counts';

/** Topics one subscriber-count question may name (bounds the request and every node's answer). */
export const MAX_COUNTED_TOPICS = 100;

/**
 * Read-only questions about topics, shared by every front door (socket ops, HTTP API). They return
 * values, never frames; each front door encodes them in its own format. `readable` is the caller's
 * subscribe grant (null: the HTTP API, already authenticated by its key).
 */
export class TopicQueries {
  constructor(
    private readonly hub: Hub,
    private readonly broker: Broker,
    private readonly bus: ControlBus,
  ) {
    bus.handle(TOPICS_QUERY, (body) => this.localTopics(body));
    bus.handle(COUNTS_QUERY, (body) => (isTopicArray(body) ? body.map((t) => this.hub.get(t)?.subscribers ?? 0) : null));
  }

  /**
   * Subscribers of each of `topics` (at most MAX_COUNTED_TOPICS) summed over the cluster: a point
   * lookup on every node, where a topic list would scan all of each node's topics.
   */
  async counts(topics: readonly string[]): Promise<number[]> {
    const sums = topics.map(() => 0);
    for (const a of await this.bus.gather(COUNTS_QUERY, topics)) {
      if (!Array.isArray(a) || a.length !== topics.length) continue;
      a.forEach((n: unknown, i) => {
        if (Number.isSafeInteger(n) && (n as number) > 0) sums[i] = (sums[i] as number) + (n as number);
      });
    }
    return sums;
  }

  /** Up to `limit` retained messages: the newest, or the first after `since`; cluster-wide when the broker keeps history. */
  history(readable: TopicPatterns | null, topic: string, limit: number, since: StreamPosition | undefined): Outcome<HistoryPage> {
    if (readable !== null && !readable.allows(topic)) return forbidden();
    if (this.broker.history !== undefined) return this.broker.history(topic, limit, since);
    const state = this.hub.acquire(topic);
    const page = readLocalHistory(state, limit, since);
    this.hub.releaseIfIdle(state);
    return page;
  }

  /**
   * Topics with subscribers anywhere in the cluster. Each node sends its first `limit` matching topics
   * after the cursor; the global first `limit` are among them, so the merge is exact.
   */
  async topics(req: TopicListRequest): Promise<TopicList> {
    const answers = await this.bus.gather(TOPICS_QUERY, req);
    const sums = new Map<string, number>();
    let more = false;
    for (const a of answers) {
      if (!isNodeTopics(a)) continue;
      more ||= a.more;
      for (const [topic, n] of a.topics) sums.set(topic, (sums.get(topic) ?? 0) + n);
    }
    const names = [...sums.keys()].sort();
    const page = names.slice(0, req.limit);
    const last = page.at(-1);
    return {
      topics: page.map((topic) => ({ topic, subscribers: sums.get(topic) as number })),
      cursor: last !== undefined && (more || names.length > req.limit) ? last : null,
    };
  }

  /** This node's part of a topic list (the request may come from another node: checked, not trusted). */
  private localTopics(body: unknown): NodeTopics | null {
    if (!isListRequest(body)) return null;
    const matching: [string, number][] = [];
    for (const entry of this.hub.activeTopics()) {
      const topic = entry[0];
      if (topic > body.cursor && topic.startsWith(body.prefix)) matching.push(entry);
    }
    matching.sort((a, b) => (a[0] < b[0] ? -1 : 1));
    return { topics: matching.slice(0, body.limit), more: matching.length > body.limit };
  }
}

const forbidden = (): GatewayError => new GatewayError(ErrorCode.Forbidden, 'token does not allow subscribing to this topic');

function isListRequest(v: unknown): v is TopicListRequest {
  const r = v as TopicListRequest;
  return typeof v === 'object' && v !== null && typeof r.prefix === 'string' && typeof r.cursor === 'string' && Number.isSafeInteger(r.limit) && r.limit > 0 && r.limit <= MAX_PAGE_LIMIT;
}

/** A list of topics from another node: checked, and bounded so the answer is. */
export function isTopicArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.length <= MAX_COUNTED_TOPICS && v.every((t) => typeof t === 'string');
}

function isNodeTopics(v: unknown): v is NodeTopics {
  const t = v as NodeTopics;
  return typeof v === 'object' && v !== null && Array.isArray(t.topics) && t.topics.every((e) => Array.isArray(e) && typeof e[0] === 'string' && typeof e[1] === 'number');
}
