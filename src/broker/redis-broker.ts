import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ioredis } from '../optional-deps';
import type { Config } from '../config/schema';
import type { Logger } from '../log';
import type { GatewayMetrics } from '../metrics/gateway-metrics';
import type { PublishSource, Stats } from '../metrics/stats';
import { ErrorCode, GatewayError } from '../protocol/codes';
import type { StreamPosition } from '../protocol/commands';
import { Payload } from '../protocol/payload';
import type { Hub } from '../pubsub/hub';
import { type TopicState, newEpoch } from '../pubsub/topic-state';
import type { Broker, HistoryPage, PublishOutcome, RetainedMessage, TopicSnapshot } from './broker';
import type { HistoryMessage } from '../protocol/codec';
import { unpackr } from '../protocol/msgpack';
import { unrecoverable } from '../pubsub/history-read';
import { brokerTls } from './broker-tls';
import { Envelope, FORMAT_JSON, FORMAT_MSGPACK, MsgpackCursor } from './envelope';
import { InterestTable, type InterestTarget } from './interest';
import { Backoff, raceTimeout } from './lifecycle';
import { EnvelopeReceiver, absoluteNow } from './receiver';
import { CONTROL_CHANNEL, HISTORY_LUA, PUBLISH_LUA, SNAPSHOT_LUA, channelOf, controlChannel, logKey, metaKey, nodeChannel } from './redis-scripts';
import type { ControlTransport } from '../cluster/control-bus';
import { publishWallTime } from '../metrics/publish-clock';

const UNAVAILABLE = new GatewayError(ErrorCode.Unavailable, 'the broker is unreachable; retry later');
const BUSY = new GatewayError(ErrorCode.Unavailable, 'too many publishes waiting for the broker; retry later');
const SNAPSHOT_TIMEOUT_MS = 3000;
/** Pause before a failed refill is asked again (the command connection may come back after the subscriber's). */
const RESYNC_RETRY_MS = 250;
/** Then live messages flow again with a gap: ~5 s without a command connection. */
const RESYNC_ATTEMPTS = 20;

const sha1 = (s: string): string => createHash('sha1').update(s).digest('hex');
const PUBLISH_SHA = sha1(PUBLISH_LUA);
const SNAPSHOT_SHA = sha1(SNAPSHOT_LUA);
const HISTORY_SHA = sha1(HISTORY_LUA);

/** A snapshot script sent; its reply arrives at the cut in the subscriber stream. */
interface PendingSnapshot {
  readonly topic: string;
  /** At the cut: the topic's position, and the cursor at the retained entries after `since` (then the latest message). */
  readonly atCut: (seq: number, epoch: string, entries: MsgpackCursor) => void;
  readonly fail: (e: GatewayError) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * Redis fan-out with cluster-wide sequences: a Lua script assigns seq, appends to the topic's stream and
 * PUBLISHes in one atomic step; nodes SUBSCRIBE per topic of interest and deliver in Redis's order.
 * Recovery that misses this node's history is served from the stream (see snapshot()).
 *
 * Two connections: commands (scripts) and a subscriber. Neither queues while down (enableOfflineQueue
 * off): publishes are refused with `unavailable` and counted, and in-flight ones are capped.
 */
export class RedisBroker implements Broker, InterestTarget {
  readonly kind = 'redis';
  private readonly nodeId = newEpoch();
  readonly control: ControlTransport;
  private receiveControl: (message: Buffer) => void = () => {};
  private controlUp: () => void = () => {};
  private readonly controlChannelBuf = Buffer.from(CONTROL_CHANNEL);
  private readonly ownControlChannelBuf: Buffer;
  private readonly replyChannel: string;
  private readonly replyChannelBuf: Buffer;
  private readonly interest: InterestTable;
  private readonly receiver: EnvelopeReceiver;
  private readonly cmd: Redis;
  private readonly sub: Redis;
  /** Topics whose local state is in step with Redis since the last snapshot (cleared on any outage). */
  private readonly stepped = new Set<string>();
  /**
   * Topics being refilled from the stream after the subscriber connection came back (live messages wait),
   * each with the number of its latest refill: an answer to an older one (the connection dropped again
   * meanwhile) is ignored.
   */
  private readonly resyncing = new Map<string, number>();
  private resyncs = 0;
  private readonly payload = new Payload();
  /** Per topic, the SUBSCRIBE in flight or done, so a snapshot runs only after it took effect. */
  private readonly subscribed = new Map<string, Promise<unknown>>();
  private readonly snapshots = new Map<string, PendingSnapshot>();
  private readonly cursor = new MsgpackCursor();
  private cmdUp = false;
  private subUp = false;
  private inflight = 0;
  private nextRequest = 0;
  private epochs = 0;
  private closed = false;

  constructor(
    url: string,
    private readonly config: Config,
    private readonly hub: Hub,
    private readonly stats: Stats,
    metrics: GatewayMetrics,
    private readonly log: Logger,
  ) {
    this.replyChannel = nodeChannel(this.nodeId);
    this.replyChannelBuf = Buffer.from(this.replyChannel);
    this.ownControlChannelBuf = Buffer.from(controlChannel(this.nodeId));
    this.control = {
      nodeId: this.nodeId,
      send: (to, message) => {
        if (this.cmdUp) this.cmd.publish(to === null ? CONTROL_CHANNEL : controlChannel(to), message).catch(() => undefined);
      },
      onControl: (receive) => (this.receiveControl = receive),
      // Both connections: sends go out on commands, the control channels are part of the subscriber's SUBSCRIBE.
      isUp: () => this.ready(),
      onUp: (listener) => (this.controlUp = listener),
    };
    this.interest = new InterestTable(this, config.brokerLinger, stats);
    this.receiver = new EnvelopeReceiver(hub, stats, metrics.brokerRoundtrip, metrics.brokerLag, (t) => this.interest.has(t) && !this.resyncing.has(t), this.nodeId, true, log, this.config.maxDepth);
    hub.addInterestListener(this.interest);
    this.cmd = this.connection(url, 'commands');
    this.sub = this.connection(url, 'subscriber');
    this.cmd.on('ready', () => this.loadScripts());
    this.sub.on('ready', () => this.resubscribe());
    this.sub.on('messageBuffer', (channel: Buffer, message: Buffer) => {
      if (channel.equals(this.replyChannelBuf)) this.snapshotReply(message);
      else if (channel.equals(this.controlChannelBuf) || channel.equals(this.ownControlChannelBuf)) this.receiveControl(message);
      else this.receiver.receive(message);
    });
  }

  private connection(url: string, role: string): Redis {
    const backoff = new Backoff(100, 5000);
    const tls = brokerTls(this.config);
    const r = new (ioredis().Redis)(url, {
      // rediss:// turns TLS on by itself; the files add a private CA or a client certificate.
      ...(tls === null ? {} : { tls }),
      lazyConnect: true,
      enableOfflineQueue: false,
      autoResubscribe: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 2000,
      retryStrategy: () => backoff.next(),
      connectionName: `wsgate-${this.nodeId}-${role}`,
      // Scripts issued in one event-loop turn leave in one write (ioredis holds them to setImmediate);
      // one at a time, each publish was its own write and its own read at Redis (see NatsBroker.forward).
      enableAutoPipelining: role === 'commands',
    });
    let warned = false;
    r.on('error', (e: Error) => {
      if (!warned) this.log.warn({ err: e.message, broker: 'redis', role }, 'broker connection error; retrying');
      warned = true;
    });
    r.on('ready', () => {
      warned = false;
      backoff.reset();
    });
    r.on('close', () => this.down(role));
    return r;
  }

  /** Connects in the background: a node whose broker is down still starts and serves local clients. */
  async start(): Promise<void> {
    const ready = Promise.all([this.cmd.connect(), this.sub.connect()]);
    ready.catch(() => undefined); // retried by ioredis; readiness reports it
    await raceTimeout(ready, 2000);
  }

  ready(): boolean {
    return this.cmdUp && this.subUp;
  }

  publish(topic: string, payload: Payload, source: PublishSource, startedAt: number): PublishOutcome | Promise<PublishOutcome> {
    if (!this.cmdUp) {
      this.stats.brokerFailures++;
      return UNAVAILABLE;
    }
    if (this.inflight >= this.config.brokerMaxPending) {
      this.stats.brokerFailures++;
      return BUSY;
    }
    // A copy in the data's own format: the payload's bytes are a view of a buffer the next publish reuses.
    const data = Buffer.allocUnsafe(payload.dataLength());
    payload.copyData(data, 0);
    const format = payload.isJson ? FORMAT_JSON : FORMAT_MSGPACK;
    const rule = this.hub.ruleOf(topic);
    const history = rule.historyLimits;
    this.inflight++;
    return this.cmd
      .evalsha(
        PUBLISH_SHA,
        2,
        metaKey(topic),
        logKey(topic),
        channelOf(topic),
        topic,
        String(publishWallTime(startedAt)),
        this.nodeId,
        source,
        data,
        history.size,
        history.ttlMs,
        this.candidateEpoch(),
        this.config.positionTtl * 1000,
        rule.lastMessage ? '1' : '0',
        format,
      )
      .then(
        (seq) => {
          this.inflight--;
          this.stats.brokerPublished++;
          this.stats.brokerBytesOut += data.length + topic.length * 3 + 64;
          return Number(seq);
        },
        (e: Error) => {
          this.inflight--;
          this.stats.brokerFailures++;
          this.log.debug({ err: e.message, broker: 'redis' }, 'publish failed');
          return UNAVAILABLE;
        },
      );
  }

  inStep(topic: string): boolean {
    return this.stepped.has(topic);
  }

  snapshot(topic: string, since: StreamPosition | undefined, done: (s: TopicSnapshot | GatewayError) => void): void {
    this.requestSnapshot(topic, since, done, (seq, epoch, entries) => {
      const state = this.hub.adopt(topic, seq, epoch);
      this.stepped.add(topic);
      const replay = since !== undefined && since.epoch === epoch && since.seq <= seq ? this.retained(topic, entries, since.seq, seq) : null;
      if (since === undefined && state.rule.lastMessage) this.adoptLast(state, entries);
      done({ seq, epoch, replay });
    });
  }

  async history(topic: string, limit: number, since: StreamPosition | undefined): Promise<HistoryPage | GatewayError> {
    if (!this.cmdUp) return UNAVAILABLE;
    let reply: [number, Buffer, Buffer[]];
    try {
      // ioredis has a Buffer variant of every command at runtime; its typings omit evalshaBuffer.
      const binary = this.cmd as unknown as { evalshaBuffer(...args: (string | number)[]): Promise<[number, Buffer, Buffer[]]> };
      reply = await binary.evalshaBuffer(HISTORY_SHA, 2, metaKey(topic), logKey(topic), limit, since?.seq ?? -1, since?.epoch ?? '', this.candidateEpoch(), this.config.positionTtl * 1000);
    } catch (e) {
      this.log.debug({ err: (e as Error).message, broker: 'redis' }, 'history failed');
      return UNAVAILABLE;
    }
    const [seq, epochBuf, entries] = reply;
    const epoch = epochBuf.toString('latin1');
    if (since !== undefined && since.epoch !== epoch) return unrecoverable(since);
    const oldest = absoluteNow() - this.hub.ruleOf(topic).historyLimits.ttlMs;
    const cursor = new MsgpackCursor();
    const env = new Envelope();
    const messages: HistoryMessage[] = [];
    try {
      for (const e of entries) {
        env.read(cursor.reset(e));
        // Only data bounded like a client's: anything else on the stream is foreign.
        if (env.ts >= oldest && env.checkData(this.config.maxDepth) === 'ok') messages.push({ s: env.seq, d: env.json ? JSON.parse(env.data.toString('utf8')) : unpackr.unpack(env.data) });
      }
    } catch (e) {
      this.log.warn({ err: (e as Error).message, topic }, 'malformed entry in a history stream');
      return UNAVAILABLE;
    }
    return { seq: Number(seq), epoch, messages };
  }

  /**
   * After the subscriber connection was away: fans out to the local subscribers what `topic` missed
   * meanwhile, read from the stream at a cut, so they see no gap; live messages wait (are dropped as
   * duplicates of the refill) until then, and a refill that fails (the command connection not back yet,
   * no answer) is asked again, up to RESYNC_ATTEMPTS times. A gap is left only when the stream no longer
   * holds the messages. If the stream started over meanwhile (a new epoch), subscribers are told of the
   * reset at its seq 0 and refilled from its start.
   */
  private resync(topic: string, again = true, attempt = 1): void {
    // Seq 0 included: the node holds the cluster's epoch from its subscribe snapshot, so a topic whose
    // first message went by while the connection was away is refilled like any other.
    const state = this.hub.get(topic);
    if (state === undefined) return;
    const since = { seq: state.seq, epoch: state.epoch };
    const id = ++this.resyncs;
    this.resyncing.set(topic, id);
    const current = () => this.resyncing.get(topic) === id;
    this.requestSnapshot(topic, since, (e) => {
      if (!current()) return;
      if (!this.closed && this.interest.has(topic) && attempt < RESYNC_ATTEMPTS) {
        setTimeout(() => current() && this.resync(topic, again, attempt + 1), RESYNC_RETRY_MS).unref();
        return;
      }
      this.resyncing.delete(topic);
      this.log.warn({ topic, err: e.reason, broker: 'redis' }, 'cannot refill a topic after reconnecting; its subscribers see a gap');
    }, (seq, epoch, entries) => {
      if (!current()) return;
      this.resyncing.delete(topic);
      if (since.epoch !== epoch && seq > 0 && again) {
        this.hub.adopt(topic, 0, epoch);
        return this.resync(topic, false);
      }
      const missed = since.epoch === epoch && since.seq <= seq ? this.retained(topic, entries, since.seq, seq) : null;
      if (missed === null) this.hub.adopt(topic, seq, epoch);
      else for (const m of missed) this.hub.deliver(topic, this.payload.setRaw(m.data, 0, m.data.length, m.json), 'broker', performance.now(), m.seq, epoch);
      this.stats.brokerRefilled += missed?.length ?? 0;
      this.stepped.add(topic);
    });
  }

  private requestSnapshot(topic: string, since: StreamPosition | undefined, fail: (e: GatewayError) => void, atCut: PendingSnapshot['atCut']): void {
    const id = String(++this.nextRequest);
    const timer = setTimeout(() => this.finishSnapshot(id, new GatewayError(ErrorCode.Unavailable, 'broker did not answer in time')), SNAPSHOT_TIMEOUT_MS);
    this.snapshots.set(id, { topic, atCut, fail, timer });
    const subscribing = this.subscribed.get(topic) ?? Promise.reject(new Error('not subscribed'));
    const rule = this.hub.ruleOf(topic);
    subscribing
      .then(() =>
        this.cmd.evalsha(SNAPSHOT_SHA, 2, metaKey(topic), logKey(topic), this.replyChannel, id, since?.seq ?? -1, rule.historyLimits.size, this.candidateEpoch(), this.config.positionTtl * 1000, rule.lastMessage && since === undefined ? '1' : '0'),
      )
      .catch((e: Error) => this.finishSnapshot(id, new GatewayError(ErrorCode.Unavailable, `broker: ${e.message}`)));
  }

  subscribeTopic(topic: string): void {
    const p = this.subUp ? this.sub.subscribe(channelOf(topic)) : Promise.reject(new Error('broker down'));
    p.catch(() => undefined); // restored by resubscribe() on the next ready
    this.subscribed.set(topic, p);
  }

  unsubscribeTopic(topic: string): void {
    this.subscribed.delete(topic);
    this.stepped.delete(topic);
    this.resyncing.delete(topic);
    if (this.subUp) this.sub.unsubscribe(channelOf(topic)).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.interest.close();
    for (const id of [...this.snapshots.keys()]) this.finishSnapshot(id, new GatewayError(ErrorCode.Unavailable, 'node is shutting down'));
    // quit() lets in-flight publishes finish; bounded so a dead broker cannot hold up shutdown.
    await raceTimeout(Promise.all([this.cmd.quit(), this.sub.quit()]), 2000);
    this.cmd.disconnect();
    this.sub.disconnect();
    this.stats.brokerUp = false;
  }

  private candidateEpoch(): string {
    return this.nodeId + (++this.epochs).toString(36);
  }

  private loadScripts(): void {
    Promise.all([this.cmd.script('LOAD', PUBLISH_LUA), this.cmd.script('LOAD', SNAPSHOT_LUA), this.cmd.script('LOAD', HISTORY_LUA)]).then(
      () => {
        this.cmdUp = true;
        this.syncUp();
      },
      (e: Error) => this.log.warn({ err: e.message, broker: 'redis' }, 'cannot load scripts'),
    );
  }

  /**
   * After (re)connecting: our reply channel and every topic of interest, in one SUBSCRIBE; then each
   * topic is refilled with what it missed while the connection was away.
   */
  private resubscribe(): void {
    const topics = [...this.interest.topics()];
    const p = this.sub.subscribe(this.replyChannel, CONTROL_CHANNEL, controlChannel(this.nodeId), ...topics.map(channelOf));
    p.catch(() => undefined);
    for (const t of topics) this.subscribed.set(t, p);
    // Synchronously, before any message of the new subscription can arrive.
    for (const t of topics) this.resync(t);
    p.then(() => {
      this.subUp = true;
      this.syncUp();
    });
  }

  private down(role: string): void {
    if (role === 'commands') this.cmdUp = false;
    else {
      this.subUp = false;
      // Messages may be lost while the subscriber is away: every topic needs a fresh snapshot.
      this.stepped.clear();
    }
    this.syncUp();
  }

  private syncUp(): void {
    const up = this.ready();
    if (up === this.stats.brokerUp || this.closed) return;
    this.stats.brokerUp = up;
    this.log[up ? 'info' : 'warn']({ broker: 'redis' }, up ? 'broker connected' : 'broker disconnected');
    if (up) this.controlUp();
  }

  /** The snapshot script's reply, arriving at the cut in the subscriber stream. */
  private snapshotReply(message: Buffer): void {
    const c = this.cursor.reset(message);
    let id: string;
    let seq: number;
    let epoch: string;
    try {
      c.arrayLength();
      id = c.ascii();
      seq = c.number();
      epoch = c.ascii();
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'malformed snapshot reply');
      return;
    }
    const pending = this.snapshots.get(id);
    if (pending === undefined) return; // timed out meanwhile
    if (!this.interest.has(pending.topic)) return this.finishSnapshot(id, new GatewayError(ErrorCode.Unavailable, 'interest dropped'));
    this.snapshots.delete(id);
    clearTimeout(pending.timer);
    pending.atCut(seq, epoch, c);
  }

  /** Keeps the snapshot's latest message (after its entries) on the local state, so a sub gets it at once. */
  private adoptLast(state: TopicState, c: MsgpackCursor): void {
    try {
      for (let n = c.arrayLength(); n > 0; n--) c.bytes();
      const last = c.bytes();
      if (last.length === 0) return;
      const env = new Envelope().read(new MsgpackCursor().reset(last));
      // Kept as msgpack (LastMessage's form); data not bounded like a client's is foreign.
      if (env.seq === state.seq && env.checkData(this.config.maxDepth) === 'ok') this.hub.keepLast(state, env.seq, this.payload.setRaw(env.buf, env.dataStart, env.dataEnd, env.json).msgpack());
    } catch (e) {
      this.log.warn({ err: (e as Error).message, topic: state.name }, 'malformed latest message in a snapshot');
    }
  }

  /** The entries after `since` up to `seq` if all are there and not older than the history TTL; else null. */
  private retained(topic: string, c: MsgpackCursor, since: number, seq: number): RetainedMessage[] | null {
    const oldest = absoluteNow() - this.hub.ruleOf(topic).historyLimits.ttlMs;
    const inner = new MsgpackCursor();
    const out: RetainedMessage[] = [];
    try {
      const n = c.arrayLength();
      if (n !== seq - since) return null;
      for (let i = 0; i < n; i++) {
        const env = new Envelope().read(inner.reset(c.bytes()));
        if (env.seq !== since + 1 + i || env.ts < oldest) return null;
        // Served like live messages: only data bounded like a client's (anything else on the stream is foreign).
        if (env.checkData(this.config.maxDepth) !== 'ok') return null;
        out.push({ seq: env.seq, data: env.data, json: env.json });
      }
    } catch {
      return null;
    }
    return out;
  }

  /** Ends a snapshot that will not reach its cut. */
  private finishSnapshot(id: string, e: GatewayError): void {
    const pending = this.snapshots.get(id);
    if (pending === undefined) return;
    this.snapshots.delete(id);
    clearTimeout(pending.timer);
    pending.fail(e);
  }
}
