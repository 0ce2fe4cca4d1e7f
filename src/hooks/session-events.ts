import { type Session, clientId } from '../session/session';
import { MemberWebhooks } from './member-webhooks';
import type { SharedMembership } from '../shared/membership-table';
import type { WebhookSender } from './webhook-sender';

/** What the session layer reports about connections, for webhooks. */
export interface SessionEvents {
  disconnected(conn: Session, code: number): void;
  /** A client publish that got `seq`; sent only for topics whose rule sets `webhookPublish`. */
  published(conn: Session, topic: string, seq: number, data: unknown): void;
  /** Whether publishes to `topic` are reported (then `published` needs their data decoded). */
  publishHooked(topic: string): boolean;
  /** A subscription to a topic with presence began / ended. */
  joined(conn: Session, topic: string): void;
  left(conn: Session, topic: string): void;
  close(): void;
}

/**
 * Session events as webhooks: `disconnect` for every connection, `client_publish` for topics whose rule
 * asks, `join` / `leave` for topics with presence.
 */
export class WebhookSessionEvents implements SessionEvents {
  private readonly members: MemberWebhooks;

  constructor(
    private readonly sender: WebhookSender,
    readonly publishHooked: (topic: string) => boolean,
    leaveDelayMs: number,
    /** Members of the whole process (workers mode), else null: per node. */
    shared: SharedMembership | null = null,
  ) {
    this.members = new MemberWebhooks(sender, leaveDelayMs, shared);
  }

  joined(conn: Session, topic: string): void {
    this.members.joined(conn, topic);
  }

  left(conn: Session, topic: string): void {
    this.members.left(conn, topic);
  }

  close(): void {
    this.members.close();
  }

  disconnected(conn: Session, code: number): void {
    this.sender.emit({ name: 'disconnect', client: clientId(conn), user: conn.grant.subject, code });
  }

  published(conn: Session, topic: string, seq: number, data: unknown): void {
    if (!this.publishHooked(topic)) return;
    this.sender.emit({ name: 'client_publish', client: clientId(conn), user: conn.grant.subject, topic, seq, data });
  }
}
