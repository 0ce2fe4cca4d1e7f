import { type Session, clientId } from '../session/session';
import type { SharedMembership } from '../shared/membership-table';
import type { WebhookEvent, WebhookSender } from './webhook-sender';

/** One user's (or anonymous client's) subscriptions to one topic on this node, and its pending leave. */
interface Membership {
  subscriptions: number;
  leaving: { readonly timer: NodeJS.Timeout; readonly event: WebhookEvent } | null;
}

/**
 * `join` / `leave` webhooks for topics whose rule has presence. A member is a user (an anonymous
 * connection is its own member): its first subscription on this node sends `join`, its last one gone
 * sends `leave` after `delayMs`, and a member back within the delay sends neither. Entries exist only
 * while a member is subscribed or leaving, so the table is bounded by presence subscriptions. With the
 * workers of one process (`shared`), first and last are the process's: a member on two workers joins
 * once, and leaves when gone from both.
 */
export class MemberWebhooks {
  private readonly members = new Map<string, Membership>();

  constructor(
    private readonly sender: WebhookSender,
    private readonly delayMs: number,
    private readonly shared: SharedMembership | null = null,
  ) {}

  joined(conn: Session, topic: string): void {
    const key = keyOf(conn, topic);
    const m = this.members.get(key);
    if (m === undefined) {
      this.members.set(key, { subscriptions: 1, leaving: null });
      if (this.shared?.occupy(key) ?? true) this.sender.emit({ name: 'join', topic, client: clientId(conn), user: conn.grant.subject });
      return;
    }
    m.subscriptions++;
    if (m.leaving !== null) {
      clearTimeout(m.leaving.timer);
      m.leaving = null;
      // Back within the delay: held here again (nothing to announce).
      this.shared?.occupy(key);
    }
  }

  left(conn: Session, topic: string): void {
    const key = keyOf(conn, topic);
    const m = this.members.get(key);
    if (m === undefined || --m.subscriptions > 0) return;
    const event: WebhookEvent = { name: 'leave', topic, client: clientId(conn), user: conn.grant.subject };
    // false: still a member on another worker, nothing to send; null: not in the shared table, this node's own.
    const last = this.shared === null ? null : this.shared.vacate(key);
    const timer = setTimeout(() => {
      this.members.delete(key);
      if (last === null || (last && this.confirmed(key))) this.sender.emit(event);
    }, this.delayMs);
    timer.unref();
    m.leaving = { timer, event };
  }

  /** Whether no worker took the member back within the delay (always, without workers). */
  private confirmed(key: string): boolean {
    return this.shared === null || this.shared.confirm(key);
  }

  /** Sends the leaves still waiting (the node is going away and could not later). */
  close(): void {
    for (const [key, m] of this.members) {
      if (m.leaving === null) continue;
      clearTimeout(m.leaving.timer);
      if (this.confirmed(key)) this.sender.emit(m.leaving.event);
    }
    this.members.clear();
  }
}

// '\n' cannot occur in a topic, so topic and member cannot run into each other.
const keyOf = (conn: Session, topic: string): string => `${topic}\n${conn.grant.subject ?? clientId(conn)}`;
