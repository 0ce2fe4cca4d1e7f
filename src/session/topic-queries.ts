import type { TopicPatterns } from '../auth/topic-patterns';
import type { Broker, HistoryPage } from '../broker/broker';
import { ErrorCode, GatewayError } from '../protocol/codes';
import type { StreamPosition } from '../protocol/commands';
import { readLocalHistory } from '../pubsub/history-read';
import type { Hub } from '../pubsub/hub';

/** A value now, or later from the broker: front doors settle both the same way. */
export type Outcome<T> = T | GatewayError | Promise<T | GatewayError>;

/**
 * Read-only questions about topics, shared by every front door (socket ops, HTTP API). They return
 * values, never frames; each front door encodes them in its own format. `readable` is the caller's
 * subscribe grant (null: the HTTP API, already authenticated by its key).
 */
export class TopicQueries {
  constructor(
    private readonly hub: Hub,
    private readonly broker: Broker,
  ) {}

  /** Up to `limit` retained messages: the newest, or the first after `since`; cluster-wide when the broker keeps history. */
  history(readable: TopicPatterns | null, topic: string, limit: number, since: StreamPosition | undefined): Outcome<HistoryPage> {
    if (readable !== null && !readable.allows(topic)) return forbidden();
    if (this.broker.history !== undefined) return this.broker.history(topic, limit, since);
    const state = this.hub.acquire(topic);
    const page = readLocalHistory(state, limit, since);
    this.hub.releaseIfIdle(state);
    return page;
  }
}

const forbidden = (): GatewayError => new GatewayError(ErrorCode.Forbidden, 'token does not allow subscribing to this topic');
