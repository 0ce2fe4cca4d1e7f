import { type Connection, clientId } from '../server/connection';
import type { WebhookSender } from './webhook-sender';

/** What the session layer reports about connections, for webhooks. */
export interface SessionEvents {
  disconnected(conn: Connection, code: number): void;
  /** A client publish that got `seq`; sent only for topics whose rule sets `webhookPublish`. */
  published(conn: Connection, topic: string, seq: number, data: unknown): void;
  /** Whether publishes to `topic` are reported (then `published` needs their data decoded). */
  publishHooked(topic: string): boolean;
}

/** Session events as webhooks: `disconnect` for every connection, `client_publish` for topics whose rule asks. */
export class WebhookSessionEvents implements SessionEvents {
  constructor(
    private readonly sender: WebhookSender,
    readonly publishHooked: (topic: string) => boolean,
  ) {}

  disconnected(conn: Connection, code: number): void {
    this.sender.emit({ name: 'disconnect', client: clientId(conn), user: conn.grant.subject, code });
  }

  published(conn: Connection, topic: string, seq: number, data: unknown): void {
    if (!this.publishHooked(topic)) return;
    this.sender.emit({ name: 'client_publish', client: clientId(conn), user: conn.grant.subject, topic, seq, data });
  }
}
