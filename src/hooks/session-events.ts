import { TopicPatterns } from '../auth/topic-patterns';
import { type Connection, clientId } from '../server/connection';
import type { WebhookSender } from './webhook-sender';

/** What the session layer reports about connections, for webhooks. */
export interface SessionEvents {
  disconnected(conn: Connection, code: number): void;
  /** A client publish that got `seq`; sent only for topics chosen by --webhook-publish-topics. */
  published(conn: Connection, topic: string, seq: number, data: unknown): void;
}

/** Session events as webhooks: `disconnect` for every connection, `client_publish` for chosen topics. */
export class WebhookSessionEvents implements SessionEvents {
  private readonly publishTopics: TopicPatterns | null;

  constructor(
    private readonly sender: WebhookSender,
    publishTopics: readonly string[],
  ) {
    this.publishTopics = publishTopics.length === 0 ? null : new TopicPatterns(publishTopics);
  }

  disconnected(conn: Connection, code: number): void {
    this.sender.emit({ name: 'disconnect', client: clientId(conn), user: conn.grant.subject, code });
  }

  published(conn: Connection, topic: string, seq: number, data: unknown): void {
    if (this.publishTopics?.allows(topic) !== true) return;
    this.sender.emit({ name: 'client_publish', client: clientId(conn), user: conn.grant.subject, topic, seq, data });
  }
}
