import type { Config } from '../config/schema';
import type { Stats } from '../metrics/stats';
import type { CloseCode, GatewayError } from '../protocol/codes';
import type { FrameWire, Notice, Wire } from '../pubsub/hub';
import type { SendFrame } from '../pubsub/replay';
import type { TopicState } from '../pubsub/topic-state';
import type { SessionCore } from '../session/core';
import type { Door, SessionNotice } from '../session/door';
import type { Session } from '../session/session';
import type { SseStream } from './stream';

const LF = 0x0a;
const CR = 0x0d;

/**
 * An event's `data:` lines for a delivery frame, built once per message for all streams. JSON needs no
 * line breaks, but data published as JSON text is copied as it came and may hold some between tokens:
 * each line then gets its own `data:` (the client joins them with "\n", which JSON reads as whitespace).
 */
export function dataLines(frame: Uint8Array): Buffer {
  if (frame.indexOf(LF) < 0 && frame.indexOf(CR) < 0) return Buffer.concat([DATA, frame, END]);
  const text = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength).toString('utf8');
  return Buffer.from('data: ' + text.split(/\r\n|\r|\n/).join('\ndata: ') + '\n\n');
}
const DATA = Buffer.from('data: ');
const END = Buffer.from('\n\n');

/** A named event outside the message stream (subscribed, gap, join, leave, …), with the stream's cursor as its id. */
export const namedEvent = (name: string, id: string, data: unknown): string => `event: ${name}\nid: ${id}\ndata: ${JSON.stringify(data)}\n\n`;

/**
 * The SSE front door's side of the session core and of the hub. uWS subscribes WebSockets to topics
 * natively but has no such thing for HTTP responses, and every stream's event id is its own cursor: so
 * a message to a topic with SSE subscribers is framed once (the JSON delivery frame in `data:` lines)
 * and written to each of its streams here, one JS write per stream. Topics without SSE subscribers
 * never get here (Hub.deliver checks a counter).
 */
export class SseDoor implements Door<SseStream>, FrameWire {
  readonly streams = new Set<SseStream>();
  private readonly byTopic = new Map<string, Set<SseStream>>();
  /** Streams with chunks queued, flushed once per event-loop turn. */
  private readonly dirty: SseStream[] = [];
  private flushing = false;

  constructor(
    private readonly config: Config,
    private readonly stats: Stats,
    private readonly core: SessionCore,
  ) {}

  session(h: SseStream): Session {
    return h.session;
  }

  wire(): Wire {
    return 'sse';
  }

  replay(h: SseStream, _s: Session, fill: (send: SendFrame) => number): number {
    let i = -1;
    return fill((frame, _binary, seq) => {
      // Every frame of one replay is of one topic: found once, from the first frame's `{"t":"<topic>"`.
      if (i < 0) i = h.indexOf(topicOf(frame));
      h.cursor.advance(i, seq);
      this.stats.sentBytes += this.write(h, 'id: ' + h.cursor.toString() + '\n', dataLines(frame));
    });
  }

  join(h: SseStream, _s: Session, state: TopicState, _delta: boolean): void {
    let set = this.byTopic.get(state.name);
    if (set === undefined) this.byTopic.set(state.name, (set = new Set()));
    set.add(h);
    this.stats.sseSubscriptions++;
  }

  leave(h: SseStream, _s: Session, state: TopicState, _closing: boolean): void {
    this.unlink(h, state.name);
  }

  private unlink(h: SseStream, topic: string): void {
    const set = this.byTopic.get(topic);
    if (set === undefined || !set.delete(h)) return;
    this.stats.sseSubscriptions--;
    if (set.size === 0) this.byTopic.delete(topic);
  }

  notify(h: SseStream, _s: Session, notice: SessionNotice): void {
    this.event(h, notice.op, notice.reason === undefined ? { t: notice.t } : { t: notice.t, reason: notice.reason });
  }

  failed(h: SseStream, _s: Session, error: GatewayError): void {
    this.stats.countError(error.code);
    this.event(h, 'refused', { code: error.code, reason: error.reason });
  }

  /** Ends the response after an `event: close` saying why; EventSource then reconnects (after `retry`). */
  end(h: SseStream, _s: Session, code: CloseCode, reason: string): void {
    if (h.done) return;
    this.event(h, 'close', { code, reason });
    h.flush();
    h.done = true;
    h.res.cork(() => h.res.end());
    this.closed(h, code);
  }

  each(): Iterable<SseStream> {
    return this.streams;
  }

  /** A named event with the stream's cursor as its id. */
  event(h: SseStream, name: string, data: unknown): void {
    this.stats.sentBytes += this.write(h, namedEvent(name, h.cursor.toString(), data));
  }

  deliver(state: TopicState, seq: number, jsonFrame: Uint8Array): number {
    const set = this.byTopic.get(state.name);
    if (set === undefined) return 0;
    const data = dataLines(jsonFrame);
    let bytes = 0;
    for (const h of set) {
      h.cursor.set(h.indexOf(state.name), state.epoch, seq);
      bytes += this.write(h, 'id: ' + h.cursor.toString() + '\n', data);
    }
    return bytes;
  }

  notice(state: TopicState, notice: Notice): boolean {
    const set = this.byTopic.get(state.name);
    if (set === undefined) return false;
    const reset = notice.op === 'reset' ? (notice.p as { readonly epoch: string; readonly seq: number }) : null;
    for (const h of set) {
      // The topic's stream started over: the cursor moves to the new epoch, so a reconnect resumes there.
      if (reset !== null) h.cursor.set(h.indexOf(state.name), reset.epoch, reset.seq);
      this.event(h, notice.op, { t: notice.t, p: notice.p });
    }
    return set.size > 0;
  }

  /** A comment line to every stream, so proxies keep idle streams open. */
  heartbeat(): void {
    for (const h of this.streams) this.stats.sentBytes += this.write(h, ':\n\n');
  }

  /** Queues chunks on a stream (the first queued this turn schedules the flush); returns their length. */
  private write(h: SseStream, a: string | Uint8Array, b?: string | Uint8Array): number {
    if (h.done) return 0;
    if (h.enqueue(a, b)) this.dirty.push(h);
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(this.flushAll);
    }
    return a.length + (b?.length ?? 0);
  }

  private readonly flushAll = (): void => {
    this.flushing = false;
    const dirty = this.dirty;
    for (let i = 0; i < dirty.length; i++) {
      const h = dirty[i] as SseStream;
      h.flush();
      if (h.queued > this.config.maxBackpressure) this.slow(h);
    }
    dirty.length = 0;
  };

  /**
   * A reader that lets more than --max-backpressure queue is cut, like a slow WebSocket consumer, after
   * the write loop (the stream may be in the set being walked). What it has is a gap-free prefix: its
   * last event id resumes it exactly.
   */
  private slow(h: SseStream): void {
    const s = h.session;
    if (s.closeReason !== null || s.closed) return;
    s.closeReason = 'slow_consumer';
    this.stats.slowConsumerDrops++;
    this.stats.slowConsumerDisconnects++;
    queueMicrotask(() => {
      if (h.done) return;
      h.done = true;
      h.res.close();
      this.closed(h, 1006);
    });
  }

  /** The stream is over (ended by us, or aborted by the client): its session closes. */
  closed(h: SseStream, code: number): void {
    if (!this.streams.delete(h)) return;
    this.stats.sseConnections--;
    this.core.closed(this, h, h.session, code);
  }
}

/** The topic of a JSON delivery frame `{"t":"<topic>",…` (topics are validated: no quotes, no escapes). */
function topicOf(frame: Uint8Array): string {
  const end = frame.indexOf(0x22, 6);
  return Buffer.from(frame.buffer, frame.byteOffset + 6, end - 6).toString('latin1');
}
