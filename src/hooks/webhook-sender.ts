import { createHmac } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Agent } from 'undici';
import { undici } from '../optional-deps';
import type { Logger } from '../log';
import type { FixedHistogram } from '../metrics/histogram';
import type { Stats } from '../metrics/stats';
import { newEpoch } from '../pubsub/topic-state';

/** What the gateway tells the application (docs/backend.md, "Webhooks"). */
export type WebhookEvent =
  | { readonly name: 'topic_occupied' | 'topic_vacated'; readonly topic: string; readonly decided_ms?: number }
  | { readonly name: 'disconnect'; readonly client: string; readonly user: string | undefined; readonly code: number }
  | { readonly name: 'join' | 'leave'; readonly topic: string; readonly client: string; readonly user: string | undefined }
  | { readonly name: 'client_publish'; readonly client: string; readonly user: string | undefined; readonly topic: string; readonly seq: number; readonly data: unknown };

export interface WebhookOptions {
  readonly url: string;
  readonly secret: string;
  /** Events held while the application is slow or away; more are dropped (counted, logged). */
  readonly maxQueue: number;
  /** ms one POST may take. */
  readonly timeoutMs: number;
  /** Headers that sign a body; default wsgate's `X-Wsgate-Signature` keyed with `secret` (the Pusher door signs its own way). */
  readonly signHeaders?: (body: string) => Record<string, string>;
}

// Bounds of one POST and of retrying it. A failed batch is retried before any later one is sent, so
// events keep their order (per topic and overall); after the last attempt it is given up (counted).
const BATCH_EVENTS = 100;
const BATCH_DELAY_MS = 50;
const MAX_ATTEMPTS = 5;
const BACKOFF_MS = 200;
const MAX_BACKOFF_MS = 5000;
// Drops are logged at most this often (a dead application would otherwise flood the log).
const DROP_LOG_MS = 10_000;

/** Signature header value: HMAC-SHA256 of the exact body bytes with the shared secret. */
export const signature = (secret: string, body: string): string => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

/**
 * Sends events to the application in signed batches, at least once, in order, one POST at a time.
 * emit() only appends to a bounded queue: a slow or dead application never slows the caller (fan-out).
 */
export class WebhookSender<E extends object = WebhookEvent> {
  private readonly queue: (E & { readonly id: string })[] = [];
  /** Told when a queued event left (acknowledged, given up or never sent): only events emitted with one. */
  private readonly settled = new Map<object, (sent: boolean) => void>();
  private readonly agent: Agent;
  private readonly node = newEpoch();
  private serial = 0;
  private timer: NodeJS.Timeout | null = null;
  private sending: Promise<void> | null = null;
  /** Set on close: what is queued gets one attempt, nothing new is taken. */
  private closing = false;
  private closed = false;
  private lastDropLog = 0;

  constructor(
    private readonly options: WebhookOptions,
    private readonly stats: Stats,
    private readonly duration: FixedHistogram,
    private readonly log: Logger,
  ) {
    this.agent = new (undici().Agent)({ keepAliveTimeout: 30_000, connections: 1, connectTimeout: options.timeoutMs });
  }

  /**
   * Queues `event`. `id`: an id decided elsewhere (an event kept in the ledger's outbox, which a retry by
   * another node repeats), else this node's next. `settled` is told once the event has left the queue.
   */
  emit(event: E, id?: string, settled?: (sent: boolean) => void): void {
    // Closing: not settled, so an event kept in the ledger's outbox stays there for whoever reaps this node.
    if (this.closing) return;
    if (this.queue.length >= this.options.maxQueue) {
      settled?.(false);
      this.stats.webhookEvents.dropped++;
      const now = Date.now();
      if (now - this.lastDropLog >= DROP_LOG_MS) {
        this.lastDropLog = now;
        this.log.warn({ queued: this.queue.length, dropped: this.stats.webhookEvents.dropped }, 'webhook queue full: events dropped');
      }
      return;
    }
    // The id lets the application drop the duplicates at-least-once delivery can bring.
    const queued = { ...event, id: id ?? `${this.node}-${++this.serial}` };
    this.queue.push(queued);
    if (settled !== undefined) this.settled.set(queued, settled);
    this.stats.webhookQueued = this.queue.length;
    if (this.sending === null && this.timer === null) this.timer = setTimeout(() => this.start(), BATCH_DELAY_MS);
  }

  private start(): void {
    this.timer = null;
    this.sending ??= this.drain().finally(() => (this.sending = null));
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 && !this.closed) {
      const batch = this.queue.slice(0, BATCH_EVENTS);
      const sent = await this.deliver(batch);
      this.queue.splice(0, batch.length);
      this.stats.webhookQueued = this.queue.length;
      // A batch given up because the node is closing is not settled: kept in the outbox for its reaper.
      if (this.settled.size > 0 && (sent || !this.closing)) this.settle(batch, sent);
    }
  }

  private settle(events: readonly object[], sent: boolean): void {
    for (const e of events) {
      const settled = this.settled.get(e);
      if (settled === undefined) continue;
      this.settled.delete(e);
      settled(sent);
    }
  }

  /** Tries a batch up to MAX_ATTEMPTS times with growing, jittered pauses between. */
  private async deliver(batch: readonly E[]): Promise<boolean> {
    const body = JSON.stringify({ time_ms: Date.now(), events: batch });
    for (let attempt = 1; ; attempt++) {
      const failure = await this.post(body);
      if (failure === null) {
        this.stats.webhookEvents.sent += batch.length;
        return true;
      }
      if (attempt >= MAX_ATTEMPTS || this.closing || failure.final) {
        this.stats.webhookEvents.failed += batch.length;
        this.log.warn({ events: batch.length, attempts: attempt, reason: failure.reason }, 'webhook batch given up');
        return false;
      }
      this.stats.webhookRetries++;
      const pause = Math.min(BACKOFF_MS * 2 ** (attempt - 1), MAX_BACKOFF_MS);
      await new Promise((r) => setTimeout(r, pause / 2 + Math.random() * (pause / 2)));
    }
  }

  /** null when the application took the batch (2xx); `final` for a 4xx, which a retry would not change. */
  private async post(body: string): Promise<{ reason: string; final: boolean } | null> {
    const started = performance.now();
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.options.timeoutMs);
    try {
      const res = await undici().request(this.options.url, {
        method: 'POST',
        dispatcher: this.agent,
        headers: { 'content-type': 'application/json', ...(this.options.signHeaders?.(body) ?? { 'x-wsgate-signature': signature(this.options.secret, body) }) },
        body,
        signal: abort.signal,
      });
      await res.body.dump();
      if (res.statusCode >= 200 && res.statusCode < 300) return null;
      return { reason: `status ${res.statusCode}`, final: res.statusCode >= 400 && res.statusCode < 500 && res.statusCode !== 429 };
    } catch (e) {
      return { reason: abort.signal.aborted ? `no answer within ${this.options.timeoutMs} ms` : ((e as { code?: string }).code ?? (e as Error).message), final: false };
    } finally {
      clearTimeout(timer);
      this.duration.observe((performance.now() - started) / 1000);
    }
  }

  /** Sends what is queued (one attempt per batch, at most `graceMs`), then stops. */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.queue.length > 0) this.start();
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([this.sending, new Promise((r) => (grace = setTimeout(r, graceMs)))]);
    clearTimeout(grace);
    this.closed = true;
    await this.agent.destroy();
  }
}
