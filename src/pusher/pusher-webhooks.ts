import { createHmac } from 'node:crypto';
import { WebhookSender } from '../hooks/webhook-sender';
import type { Logger } from '../log';
import type { FixedHistogram } from '../metrics/histogram';
import type { Stats } from '../metrics/stats';
import type { PusherApp } from './apps';

/** Pusher's webhook events (body `{"time_ms":…,"events":[…]}`, as Pusher sends them). */
export type PusherWebhookEvent =
  | { readonly name: 'channel_occupied' | 'channel_vacated'; readonly channel: string }
  | { readonly name: 'member_added' | 'member_removed'; readonly channel: string; readonly user_id: string }
  | { readonly name: 'client_event'; readonly channel: string; readonly event: string; readonly data: string; readonly socket_id: string; readonly user_id?: string };

export interface PusherWebhookOptions {
  readonly url: string;
  readonly maxQueue: number;
  readonly timeoutMs: number;
}

/**
 * Pusher-format webhooks (`--pusher-webhook-url`) through the gateway's webhook sender (batching,
 * bounded queue, retries, ordering): one sender per app, each body signed with that app's secret as
 * Pusher signs it (`X-Pusher-Key`, `X-Pusher-Signature` = HMAC-SHA256 hex of the body).
 */
export class PusherWebhooks {
  private readonly senders = new Map<string, WebhookSender<PusherWebhookEvent>>();

  constructor(options: PusherWebhookOptions, apps: Iterable<PusherApp>, stats: Stats, duration: FixedHistogram, log: Logger) {
    for (const app of apps) {
      const signHeaders = (body: string) => ({ 'x-pusher-key': app.key, 'x-pusher-signature': createHmac('sha256', app.secret).update(body).digest('hex') });
      this.senders.set(app.id, new WebhookSender<PusherWebhookEvent>({ ...options, secret: app.secret, signHeaders }, stats, duration, log));
    }
  }

  emit(app: PusherApp, event: PusherWebhookEvent, id?: string, settled?: (sent: boolean) => void): void {
    const sender = this.senders.get(app.id);
    if (sender === undefined) settled?.(false);
    else sender.emit(event, id, settled);
  }

  async close(graceMs: number): Promise<void> {
    await Promise.all([...this.senders.values()].map((s) => s.close(graceMs)));
  }
}
