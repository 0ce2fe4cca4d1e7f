import { applyDelta } from 'fossil-delta';
import { closeClass, refusalClass } from '../../protocol/close-classes';
import { type BackoffOptions, backoffDelay, defaultBackoff, promptDelay } from './backoff';
import { Emitter } from './emitter';
import { ClientCode, WsgateError, asServerCode } from './errors';
import { defaultSocketFactory, type SocketFactory, type SocketHandle } from './socket';
import { refreshDelayMs, tokenExpiryMs } from './token-expiry';
import { type CodecName, type Command, type HistoryMessage, type PresenceMember, type ServerFrame, type StreamPosition, type WireCodec, wireCodec } from './wire';

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface ClientOptions {
  /** `ws://host:port/ws` or `wss://…`. */
  readonly url: string | URL;
  /** Wire codec; default `json`. */
  readonly codec?: CodecName;
  /**
   * Called before every (re)connect for a fresh JWT; `undefined` connects without one. Browsers send it
   * as `token=`, Node (ws package) as `Authorization: Bearer`. While connected, it is also called at
   * 80–90 % of the token's remaining lifetime (read from `exp`) and a different token is sent in-band
   * (`refresh`), so the connection outlives its first token without reconnecting.
   */
  readonly token?: () => string | undefined | Promise<string | undefined>;
  readonly backoff?: Partial<BackoffOptions>;
  /** How often a ping goes out; default 20 s. */
  readonly pingIntervalMs?: number;
  /** How long after a ping without any frame from the server the connection counts as dead; default 10 s. */
  readonly pingTimeoutMs?: number;
  /** Transport override (tests, custom sockets); default: native WebSocket, else the `ws` package. */
  readonly socket?: SocketFactory;
}

export interface MessageEvent {
  readonly topic: string;
  readonly seq: number;
  readonly epoch: string;
  readonly data: unknown;
}

/**
 * Messages were missed for certain. `not_recovered`: the server's history could not cover the resume
 * position (too old, or the epoch changed); `skipped`: a sequence jumped within an epoch (the server
 * dropped messages under `--slow-consumer drop`); `reset`: the topic's stream started over under this
 * live subscription (a new epoch, e.g. the broker lost its state): what was published since the last
 * message seen may be lost, and delivery continues with the new epoch's messages.
 */
export interface GapEvent {
  readonly topic: string;
  readonly reason: 'not_recovered' | 'skipped' | 'reset';
  /** The last position the client had. */
  readonly expected: StreamPosition;
  /** Where the stream is now; delivery continues after it. */
  readonly server: StreamPosition;
}

export interface StateEvent {
  readonly state: ConnectionState;
  /** Close code (or HTTP status of a refused upgrade) that caused a `reconnecting`/`closed` state. */
  readonly code?: number;
  /** Delay before the next attempt, for `reconnecting`. */
  readonly delayMs?: number;
  /** Failed attempts since the last open connection. */
  readonly attempt: number;
}

/** Someone subscribed to / left a topic with join/leave (its rule has `joinLeave`). */
export interface MemberEvent {
  readonly topic: string;
  readonly member: PresenceMember;
}

/** The server subscribed this client to a topic (POST /subscribe). */
export interface ServerSubscriptionEvent {
  readonly topic: string;
}

/** The server ended a subscription (a refreshed token no longer allows the topic, or POST /unsubscribe; `reason` may be empty); it is forgotten. */
export interface UnsubscribedEvent {
  readonly topic: string;
  readonly reason: string;
}

export interface ClientEvents {
  message: MessageEvent;
  unsubscribed: UnsubscribedEvent;
  gap: GapEvent;
  state: StateEvent;
  error: WsgateError;
  join: MemberEvent;
  leave: MemberEvent;
  subscribed: ServerSubscriptionEvent;
}

export interface PresenceStats {
  /** Connections subscribed, cluster-wide. */
  readonly clients: number;
  /** Distinct users among the listed members. */
  readonly users: number;
  /** Members counted but not listed (over the rule's maxPresence). */
  readonly unlisted: number;
}

export interface HistoryPage {
  readonly seq: number;
  readonly epoch: string;
  /** Oldest first. */
  readonly messages: readonly HistoryMessage[];
}

export interface SubscribeResult {
  readonly topic: string;
  /** The topic's current sequence and epoch at the server when the subscription took effect. */
  readonly seq: number;
  readonly epoch: string;
  /** Present when the subscription resumed from a position. */
  readonly recovered?: boolean;
}

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: WsgateError): void;
}

/** A topic the application wants, and the last position it has seen of it. */
interface Subscription {
  readonly topic: string;
  position: StreamPosition | null;
  /** A `sub` is in flight, or has been answered, on the current connection. */
  sent: boolean;
  active: boolean;
  /** Given by the server (POST /subscribe): deliveries are taken before the position is known. */
  readonly serverGiven: boolean;
  readonly waiters: Waiter<SubscribeResult>[];
  /** Asked for fossil deltas: `base` holds the data bytes of delivery `position.seq` (null until a full one). */
  readonly delta: boolean;
  base: Uint8Array | null;
  /** An unsub + sub (since) is under way after a broken delta chain: deltas are ignored until its reply. */
  resyncing: boolean;
}

export interface SubscribeOptions {
  /**
   * Ask for fossil deltas (the topic's rule needs `delta`, else the server answers `delta_disabled`):
   * they are applied here, so `message` events carry the data as usual. A delta that cannot be applied
   * (a missed delivery) makes the client resubscribe from its last position.
   */
  readonly delta?: boolean;
}

type Pending = { readonly kind: 'sub'; readonly sub: Subscription } | { readonly kind: 'ping' } | { readonly kind: 'cmd'; readonly waiter: Waiter<ServerOk> };
type ServerOk = Extract<ServerFrame, { kind: 'ok' }>;
type Outgoing = Extract<Command, { op: 'unsub' | 'pub' | 'presence' | 'presence_stats' | 'history' }>;
type OutgoingWithoutId =
  | { op: 'unsub'; topic: string }
  | { op: 'pub'; topic: string; data: unknown }
  | { op: 'presence' | 'presence_stats'; topic: string }
  | { op: 'history'; topic: string; limit?: number; since?: StreamPosition };

// 1008: policy (token expired); 1009: frame too big. Everything else follows protocol/close-classes.ts.
const CLOSE_POLICY = 1008;
const CLOSE_TOO_BIG = 1009;

/**
 * A wsgate client that keeps a set of subscriptions alive across reconnects: it resumes every topic
 * from the last sequence it saw (`since`), drops duplicates, and reports a `gap` when the server
 * cannot fill one. One instance serves browsers and Node alike.
 */
export class WsgateClient extends Emitter<ClientEvents> {
  private readonly url: URL;
  private readonly wire: WireCodec;
  private readonly backoff: BackoffOptions;
  private readonly pingIntervalMs: number;
  private readonly pingTimeoutMs: number;
  private state: ConnectionState = 'closed';
  private socket: SocketHandle | null = null;
  private isOpen = false;
  /** Bumped for every socket and on close(): events of an older socket are ignored. */
  private generation = 0;
  private attempt = 0;
  private nextId = 1;
  private readonly subs = new Map<string, Subscription>();
  private readonly pending = new Map<number, Pending>();
  /** Commands issued while not open, sent after the next open. */
  private queued: { cmd: OutgoingWithoutId; waiter: Waiter<ServerOk> }[] = [];
  private lastToken: string | undefined;
  /** A token the provider gave after an auth failure, used by the next dial. */
  private freshToken: string | undefined;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;
  private lastReceivedAt = 0;

  constructor(private readonly options: ClientOptions) {
    super();
    this.url = new URL(options.url);
    this.wire = wireCodec(options.codec ?? 'json');
    this.backoff = { ...defaultBackoff, ...options.backoff };
    this.pingIntervalMs = options.pingIntervalMs ?? 20_000;
    this.pingTimeoutMs = options.pingTimeoutMs ?? 10_000;
  }

  get connectionState(): ConnectionState {
    return this.state;
  }

  /**
   * Topics the client holds (or will hold after reconnecting) and the last position seen of each (null
   * until the first `sub` reply); a plain object, so `JSON.stringify` shows it as it is.
   */
  positions(): Record<string, StreamPosition | null> {
    return Object.fromEntries([...this.subs.values()].map((s) => [s.topic, s.position]));
  }

  /** Starts connecting; the connection then stays up until close() or an auth failure. */
  connect(): void {
    if (this.state !== 'closed') return;
    this.attempt = 0;
    void this.dial('connecting');
  }

  /** Closes for good: pending commands reject with `closed`. Subscriptions and positions are kept for a later connect(). */
  close(): void {
    this.stop(new WsgateError(ClientCode.Closed, 'client closed'), 1000);
  }

  /**
   * Subscribes (now, or on the next connect) and resolves with the server's reply. The subscription
   * survives reconnects until unsubscribe(). A server error (forbidden, invalid_topic, …) rejects and
   * forgets the topic.
   */
  subscribe(topic: string, options: SubscribeOptions = {}): Promise<SubscribeResult> {
    let sub = this.subs.get(topic);
    if (sub?.active === true && sub.position !== null) return Promise.resolve({ topic, ...sub.position });
    if (sub === undefined) {
      sub = { topic, position: null, sent: false, active: false, waiters: [], serverGiven: false, delta: options.delta === true, base: null, resyncing: false };
      this.subs.set(topic, sub);
    }
    const s = sub;
    const result = new Promise<SubscribeResult>((resolve, reject) => s.waiters.push({ resolve, reject }));
    if (this.isOpen && !s.sent) this.sendSub(s);
    return result;
  }

  /** Stops a subscription and forgets its position. */
  async unsubscribe(topic: string): Promise<void> {
    const sub = this.subs.get(topic);
    if (sub === undefined) return;
    this.subs.delete(topic);
    for (const w of sub.waiters.splice(0)) w.reject(new WsgateError(ClientCode.Closed, 'unsubscribed'));
    if (this.isOpen) await this.command({ op: 'unsub', topic });
  }

  /** Publishes (needs `--client-publish`); resolves with the assigned sequence. Never resent after a lost connection. */
  async publish(topic: string, data: unknown): Promise<{ seq: number }> {
    const ok = await this.command({ op: 'pub', topic, data });
    return { seq: ok.seq ?? 0 };
  }

  /** Who is subscribed to `topic` (its rule needs `presence`), across the cluster. */
  async presence(topic: string): Promise<readonly PresenceMember[]> {
    return (await this.command({ op: 'presence', topic })).presence ?? [];
  }

  async presenceStats(topic: string): Promise<PresenceStats> {
    const ok = await this.command({ op: 'presence_stats', topic });
    return { clients: ok.clients ?? 0, users: ok.users ?? 0, unlisted: ok.unlisted ?? 0 };
  }

  /** Retained messages of `topic` without subscribing: the newest `limit`, or the first after `since`. */
  async history(topic: string, options: { limit?: number; since?: StreamPosition } = {}): Promise<HistoryPage> {
    const ok = await this.command({ op: 'history', topic, ...options });
    return { seq: ok.seq ?? 0, epoch: ok.epoch ?? '', messages: ok.messages ?? [] };
  }

  private command(cmd: OutgoingWithoutId): Promise<ServerOk> {
    if (this.state === 'closed') return Promise.reject(new WsgateError(ClientCode.Closed, 'client is not connected; call connect()'));
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject };
      if (this.isOpen) this.send({ ...cmd, id: this.register({ kind: 'cmd', waiter }) } as Outgoing);
      else this.queued.push({ cmd, waiter });
    });
  }

  private register(p: Pending): number {
    const id = this.nextId++;
    this.pending.set(id, p);
    return id;
  }

  private send(cmd: Command): void {
    this.socket?.send(this.wire.encode(cmd));
  }

  private sendSub(sub: Subscription): void {
    sub.sent = true;
    const id = this.register({ kind: 'sub', sub });
    const cmd: Extract<Command, { op: 'sub' }> = sub.position === null ? { op: 'sub', topic: sub.topic, id } : { op: 'sub', topic: sub.topic, id, since: sub.position };
    if (sub.delta) cmd.delta = 'fossil';
    this.send(cmd);
  }

  /** A delta that does not follow the base: start over from the last position (a full replay, then full first). */
  private resync(sub: Subscription): void {
    sub.base = null;
    if (sub.resyncing || !this.isOpen) return;
    sub.resyncing = true;
    const ignore = { resolve: () => undefined, reject: () => undefined };
    this.send({ op: 'unsub', topic: sub.topic, id: this.register({ kind: 'cmd', waiter: ignore }) });
    this.sendSub(sub);
  }

  private setState(state: ConnectionState, extra: Omit<StateEvent, 'state' | 'attempt'> = {}): void {
    this.state = state;
    this.emit('state', { state, attempt: this.attempt, ...extra });
  }

  private async dial(state: 'connecting' | 'reconnecting'): Promise<void> {
    const gen = ++this.generation;
    if (state !== this.state) this.setState(state);
    let token: string | undefined;
    try {
      token = this.freshToken ?? (await this.options.token?.());
    } catch (e) {
      if (gen !== this.generation) return;
      this.emit('error', new WsgateError(ClientCode.TokenProvider, e instanceof Error ? e.message : String(e)));
      return this.retry(undefined, backoffDelay(this.attempt++, this.backoff));
    }
    this.freshToken = undefined;
    this.lastToken = token;
    const factory = this.options.socket ?? (await defaultSocketFactory());
    if (gen !== this.generation) return;
    this.socket = factory(new URL(this.url), this.wire.subprotocol, token, {
      open: () => gen === this.generation && this.onOpen(),
      frame: (data) => gen === this.generation && this.onFrame(data),
      close: (code, _reason, status, refusedCode) => gen === this.generation && this.onClose(code, status, refusedCode),
      error: (message) => gen === this.generation && this.emit('error', new WsgateError(ClientCode.Transport, message)),
    });
  }

  private onOpen(): void {
    this.isOpen = true;
    this.attempt = 0;
    this.lastReceivedAt = Date.now();
    this.setState('open');
    this.pingTimer = setInterval(() => this.ping(), this.pingIntervalMs);
    this.scheduleRefresh();
    for (const sub of this.subs.values()) this.sendSub(sub);
    const queued = this.queued;
    this.queued = [];
    for (const { cmd, waiter } of queued) this.send({ ...cmd, id: this.register({ kind: 'cmd', waiter }) } as Outgoing);
  }

  /** Arms the in-band refresh of the current token, if it has an `exp` and a provider can replace it. */
  private scheduleRefresh(): void {
    const exp = this.lastToken === undefined || this.options.token === undefined ? undefined : tokenExpiryMs(this.lastToken);
    const delay = exp === undefined ? undefined : refreshDelayMs(exp);
    if (delay === undefined) return;
    const gen = this.generation;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      if (gen === this.generation && this.isOpen) void this.refreshToken(gen);
    }, delay);
  }

  /**
   * Asks the provider for a new token and sends it in-band. A provider that fails or returns the same
   * token, or a refresh the server refuses (reported as an `error` event), leaves the connection to
   * expire: the server closes it with 1008 and the reconnect path asks the provider again.
   */
  private async refreshToken(gen: number): Promise<void> {
    let token: string | undefined;
    try {
      token = await this.options.token?.();
    } catch (e) {
      if (gen === this.generation) this.emit('error', new WsgateError(ClientCode.TokenProvider, e instanceof Error ? e.message : String(e)));
      return;
    }
    if (gen !== this.generation || !this.isOpen || token === undefined || token === this.lastToken) return;
    const fresh = token;
    const waiter: Waiter<ServerOk> = {
      resolve: () => {
        this.lastToken = fresh;
        if (gen === this.generation) this.scheduleRefresh();
      },
      reject: (e) => {
        if (e.code !== ClientCode.ConnectionLost) this.emit('error', e);
      },
    };
    this.send({ op: 'refresh', token: fresh, id: this.register({ kind: 'cmd', waiter }) });
  }

  /** Liveness: any frame counts as an answer, so a busy connection is never cut for a slow pong. */
  private ping(): void {
    const sentAt = Date.now();
    this.send({ op: 'ping', id: this.register({ kind: 'ping' }) });
    const gen = this.generation;
    this.timer ??= setTimeout(() => {
      this.timer = null;
      if (gen === this.generation && this.lastReceivedAt < sentAt) this.dropDeadSocket();
    }, this.pingTimeoutMs);
  }

  private dropDeadSocket(): void {
    const socket = this.socket;
    this.generation++;
    socket?.abort();
    this.onClose(1006, undefined);
  }

  private onFrame(data: string | Uint8Array): void {
    this.lastReceivedAt = Date.now();
    const frame = this.wire.decode(data);
    if (frame === null) return this.emit('error', new WsgateError(ClientCode.BadServerFrame, 'undecodable or unknown frame from server'));
    switch (frame.kind) {
      case 'delivery':
        return this.onDelivery(frame.topic, frame.seq, frame.data, data);
      case 'delta':
        return this.onDelta(frame.topic, frame.seq, frame.delta);
      case 'dropped':
        return this.emit('error', new WsgateError(ClientCode.Dropped, `the server dropped ${frame.n} messages (slow consumer)`));
      case 'join':
      case 'leave':
        return this.emit(frame.kind, { topic: frame.topic, member: frame.member });
      case 'reset':
        return this.onReset(frame.topic, frame.position);
      case 'subscribed':
        return this.onServerSubscribed(frame.topic);
      case 'unsubscribed':
        return this.onUnsubscribed(frame.topic, frame.reason);
      case 'ok':
      case 'err': {
        const p = frame.id === undefined ? undefined : this.pending.get(frame.id);
        if (p === undefined) {
          if (frame.kind === 'err') this.emit('error', new WsgateError(frame.code, frame.reason));
          return;
        }
        this.pending.delete(frame.id as number);
        return this.settle(p, frame);
      }
    }
  }

  private settle(p: Pending, frame: Extract<ServerFrame, { kind: 'ok' | 'err' }>): void {
    if (p.kind === 'ping') return;
    if (p.kind === 'cmd') return frame.kind === 'ok' ? p.waiter.resolve(frame) : p.waiter.reject(new WsgateError(frame.code, frame.reason));
    const sub = p.sub;
    if (this.subs.get(sub.topic) !== sub) return; // unsubscribed meanwhile
    sub.resyncing = false;
    if (frame.kind === 'err') {
      this.subs.delete(sub.topic);
      const error = new WsgateError(frame.code, frame.reason);
      for (const w of sub.waiters.splice(0)) w.reject(error);
      return;
    }
    const server = { seq: frame.seq ?? 0, epoch: frame.epoch ?? '' };
    const had = sub.position;
    // recovered:true: the replay that follows fills (had, server]; keep `had` so it is not dropped as duplicate.
    if (had !== null && frame.recovered === false) this.emit('gap', { topic: sub.topic, reason: 'not_recovered', expected: had, server });
    if (had === null || frame.recovered !== true) sub.position = server;
    sub.active = true;
    const result: SubscribeResult = frame.recovered === undefined ? { topic: sub.topic, ...server } : { topic: sub.topic, ...server, recovered: frame.recovered };
    for (const w of sub.waiters.splice(0)) w.resolve(result);
  }

  /**
   * The server subscribed this connection: the topic joins the client's subscriptions (resumed after a
   * reconnect like any other), and a `sub` (a no-op for a topic held) tells its epoch.
   */
  private onServerSubscribed(topic: string): void {
    if (!this.subs.has(topic)) {
      const sub: Subscription = { topic, position: null, sent: false, active: false, waiters: [], serverGiven: true, delta: false, base: null, resyncing: false };
      this.subs.set(topic, sub);
      this.sendSub(sub);
    }
    this.emit('subscribed', { topic });
  }

  private onUnsubscribed(topic: string, reason: string): void {
    const sub = this.subs.get(topic);
    if (sub === undefined) return;
    this.subs.delete(topic);
    const error = new WsgateError(ClientCode.Unsubscribed, reason);
    for (const w of sub.waiters.splice(0)) w.reject(error);
    this.emit('unsubscribed', { topic, reason });
  }

  /** The topic's stream started over: a gap, then the new epoch's messages (numbered from `server.seq` + 1). */
  private onReset(topic: string, server: StreamPosition): void {
    const sub = this.subs.get(topic);
    if (sub === undefined || sub.resyncing || sub.position === null || sub.position.epoch === server.epoch) return;
    this.emit('gap', { topic, reason: 'reset', expected: sub.position, server });
    sub.position = server;
  }

  private onDelivery(topic: string, seq: number, data: unknown, frame: string | Uint8Array | null): void {
    const sub = this.subs.get(topic);
    // Resyncing: what is still in flight from the old subscription comes again in the replay.
    if (sub === undefined || sub.resyncing) return;
    // A full delivery is the base of the next delta (kept even for a duplicate: it is the same data).
    if (sub.delta && frame !== null && sub.position !== null && seq > sub.position.seq) sub.base = this.wire.dataBytes(frame, topic, seq);
    // A server-given topic delivers before its position is known: the first delivery starts it.
    if (sub.position === null && sub.serverGiven) sub.position = { seq: seq - 1, epoch: '' };
    // Not (or no longer) wanted, or its position is unknown because the sub reply is still to come.
    if (sub.position === null) return;
    const last = sub.position;
    if (seq <= last.seq) return; // already delivered: the overlap of a replay and live delivery
    if (seq > last.seq + 1) this.emit('gap', { topic, reason: 'skipped', expected: last, server: { seq: seq - 1, epoch: last.epoch } });
    sub.position = { seq, epoch: last.epoch };
    this.emit('message', { topic, seq, epoch: last.epoch, data });
  }

  /** Applies a delta to the base; one that does not follow it (or fails its checksum) breaks the chain. */
  private onDelta(topic: string, seq: number, delta: Uint8Array): void {
    const sub = this.subs.get(topic);
    if (sub === undefined || sub.position === null || sub.resyncing || seq <= sub.position.seq) return;
    let bytes: Uint8Array | null = null;
    let data: unknown;
    if (sub.base !== null && seq === sub.position.seq + 1) {
      try {
        bytes = applyDelta(sub.base, delta);
        data = this.wire.decodeData(bytes);
      } catch {
        bytes = null;
      }
    }
    if (bytes === null) return this.resync(sub);
    sub.base = bytes;
    this.onDelivery(topic, seq, data, null);
  }

  /** Obeys the close-code scheme (docs/protocol.md, "Close codes and refusals"). */
  private onClose(code: number, refusedStatus: number | undefined, refusedCode?: string): void {
    this.clearConnection(code === CLOSE_TOO_BIG ? new WsgateError(ClientCode.MessageTooBig, 'the server refused a frame over its max payload (1009); not resent', code) : undefined);
    if (this.state === 'closed') return;
    const status = refusedStatus ?? code;
    switch (refusedStatus !== undefined ? refusalClass(refusedStatus, refusedCode) : closeClass(code)) {
      case 'new_token':
        void this.onAuthFailure(status);
        return;
      case 'terminal': {
        const what = refusedStatus !== undefined ? `upgrade refused with HTTP ${status}` : `closed with ${status}`;
        const error = new WsgateError(asServerCode(refusedCode) ?? ClientCode.Refused, `${what}; retrying would get the same answer`, status);
        this.emit('error', error);
        this.stop(error, status);
        return;
      }
      case 'reconnect_now':
        return this.retry(status, promptDelay(this.backoff));
      case 'reconnect':
        return this.retry(status, backoffDelay(this.attempt++, this.backoff));
    }
  }

  private retry(code: number | undefined, delayMs: number): void {
    this.setState('reconnecting', code === undefined ? { delayMs } : { code, delayMs });
    const gen = this.generation;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (gen === this.generation && this.state === 'reconnecting') void this.dial('reconnecting');
    }, delayMs);
  }

  /**
   * Reconnecting with the token that was just refused would only hammer the server: ask the provider
   * once for a new one, and stop unless it yields a different token.
   */
  private async onAuthFailure(status: number): Promise<void> {
    const gen = this.generation;
    let token: string | undefined;
    try {
      token = await this.options.token?.();
    } catch {
      token = undefined;
    }
    if (gen !== this.generation || this.state === 'closed') return;
    if (token !== undefined && token !== this.lastToken) {
      this.freshToken = token;
      return this.retry(status, backoffDelay(this.attempt++, this.backoff));
    }
    const error = new WsgateError(ClientCode.Unauthorized, status === CLOSE_POLICY ? 'token expired (1008) and no new token' : `upgrade refused with HTTP ${status}`, status);
    this.emit('error', error);
    this.stop(error, status);
  }

  /** Tears down the current socket's state; in-flight commands reject, subscriptions wait for the next open. */
  private clearConnection(reason: WsgateError | undefined): void {
    this.isOpen = false;
    this.socket = null;
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    this.pingTimer = null;
    if (this.refreshTimer !== null) clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const lost = reason ?? new WsgateError(ClientCode.ConnectionLost, 'connection lost before the reply; the command may or may not have taken effect');
    for (const p of this.pending.values()) if (p.kind === 'cmd') p.waiter.reject(lost);
    this.pending.clear();
    for (const sub of this.subs.values()) {
      sub.sent = sub.active = sub.resyncing = false;
      sub.base = null;
    }
  }

  private stop(error: WsgateError, code: number): void {
    const socket = this.socket;
    this.generation++;
    this.clearConnection(error);
    socket?.close(1000, 'client closed');
    for (const { waiter } of this.queued.splice(0)) waiter.reject(error);
    for (const sub of this.subs.values()) for (const w of sub.waiters.splice(0)) w.reject(error);
    if (this.state !== 'closed') this.setState('closed', { code });
  }
}
