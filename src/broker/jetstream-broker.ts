import type { ControlTransport } from '../cluster/control-bus';
import type { Config } from '../config/schema';
import type { Logger } from '../log';
import type { GatewayMetrics } from '../metrics/gateway-metrics';
import type { PublishSource, Stats } from '../metrics/stats';
import type { GatewayError } from '../protocol/codes';
import type { StreamPosition } from '../protocol/commands';
import type { Payload } from '../protocol/payload';
import type { Hub } from '../pubsub/hub';
import { newEpoch } from '../pubsub/topic-state';
import type { Broker, HistoryPage, PublishOutcome, TopicSnapshot } from './broker';
import { TopicFollower } from './jetstream-follow';
import { PublishLanes, UNAVAILABLE } from './jetstream-lanes';
import { TopicReader } from './jetstream-reader';
import { type StoreLimits, TopicStore } from './jetstream-store';
import { InterestTable, type InterestTarget } from './interest';
import { Backoff, raceTimeout } from './lifecycle';
import { NatsLink } from './nats-link';
import { EnvelopeReceiver } from './receiver';
import { publishWallTime } from '../metrics/publish-clock';

/** Longest a JetStream API request (store, read, stream setup) may take before it counts as unavailable. */
const REQUEST_TIMEOUT_MS = 3000;

/**
 * NATS with JetStream (`--nats-jetstream`): every topic's messages are numbered cluster-wide and stored
 * in one stream (jetstream-store.ts), published in groups by PublishLanes. Each node subscribes, per
 * topic of interest, to the stream's republished copy and keeps its hub in step with the stream
 * (TopicFollower): a node receives each stored message once, in the stream's order, fans it out natively,
 * and reads the stream for anything it missed. A `sub` is answered at a cut, as with Redis: the same
 * guarantees, including recovery on any node, cluster-wide history, latest message and idempotency keys
 * (Nats-Msg-Id). docs/cluster.md has the design and its measurements.
 */
export class JetStreamBroker implements Broker, InterestTarget {
  readonly kind = 'nats-jetstream';
  private readonly nodeId = newEpoch();
  private readonly link: NatsLink;
  readonly control: ControlTransport;
  private readonly interest: InterestTable;
  private readonly lanes: PublishLanes;
  private readonly reader: TopicReader;
  private readonly follower: TopicFollower;
  private readonly backoff = new Backoff(100, 5000);
  private store: TopicStore | null = null;
  private up = false;
  private closed = false;
  /** Reopening the stream after JetStream did not answer. */
  private retry: NodeJS.Timeout | null = null;
  private firstReady: (() => void) | null = null;
  /** The idempotency key of the publish being made now (see keyed()). */
  private msgId: string | null = null;

  constructor(
    url: string,
    private readonly config: Config,
    private readonly hub: Hub,
    private readonly stats: Stats,
    metrics: GatewayMetrics,
    private readonly log: Logger,
    /** Stored messages kept per topic: the largest history size of any rule, plus one for a marker. */
    private readonly perTopic: number,
  ) {
    this.interest = new InterestTable(this, config.brokerLinger, stats);
    const store = () => (this.up ? this.store : null);
    this.lanes = new PublishLanes(store, this.nodeId, config.brokerMaxPending, stats, () => stats.idempotentRepeats++);
    this.reader = new TopicReader(this.nodeId, config.maxDepth, perTopic);
    const receiver = new EnvelopeReceiver(hub, stats, metrics.brokerRoundtrip, metrics.brokerLag, (t) => this.interest.has(t), this.nodeId, true, log, config.maxDepth);
    this.follower = new TopicFollower({ hub, stats, receiver, lanes: this.lanes, reader: this.reader, store, connection: () => this.link.connection, log });
    hub.addInterestListener(this.interest);
    this.link = new NatsLink(url, config, this.nodeId, {}, {
      connected: () => this.follower.listenAll(),
      status: (up) => this.connected(up),
      lost: () => this.follower.dropSubscriptions(),
    }, log, 'nats-jetstream');
    this.control = this.link.control;
  }

  /** Connects in the background: a node whose broker is down still starts and serves local clients. */
  async start(): Promise<void> {
    const ready = new Promise<void>((resolve) => (this.firstReady = resolve));
    this.link.dial();
    await raceTimeout(ready, 3000);
  }

  ready(): boolean {
    return this.up && this.store !== null;
  }

  publish(topic: string, payload: Payload, source: PublishSource, startedAt: number): PublishOutcome | Promise<PublishOutcome> {
    return this.lanes.publish(topic, payload, source, publishWallTime(startedAt), this.msgId);
  }

  /**
   * Runs `publish` (which calls publish() synchronously) with `msgId` as its Nats-Msg-Id: the stream
   * stores a repeat within the idempotency window once, cluster-wide.
   */
  keyed<T>(msgId: string, publish: () => T): T {
    this.msgId = msgId;
    try {
      return publish();
    } finally {
      this.msgId = null;
    }
  }

  inStep(topic: string): boolean {
    return this.up && this.follower.inStep(topic);
  }

  snapshot(topic: string, since: StreamPosition | undefined, done: (s: TopicSnapshot | GatewayError) => void): void {
    this.follower.snapshot(topic, since, done);
  }

  async history(topic: string, limit: number, since: StreamPosition | undefined): Promise<HistoryPage | GatewayError> {
    const store = this.ready() ? this.store : null;
    if (store === null) return UNAVAILABLE;
    try {
      return await this.reader.history(store, topic, limit, since, this.hub.ruleOf(topic).historyLimits);
    } catch (e) {
      this.log.debug({ err: (e as Error).message, topic }, 'JetStream history read failed');
      return UNAVAILABLE;
    }
  }

  subscribeTopic(topic: string): void {
    this.follower.follow(topic);
  }

  unsubscribeTopic(topic: string): void {
    this.follower.unfollow(topic);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retry !== null) clearTimeout(this.retry);
    this.interest.close();
    this.follower.close();
    this.lanes.close();
    this.up = false;
    this.stats.brokerUp = false;
    await this.link.close();
  }

  /**
   * Connection state changes. Down: no topic is in step any more (messages may be missed). Up: the
   * stream is opened (again: the server may have restarted without it) and every topic is read again,
   * refilling what its subscribers missed meanwhile.
   */
  private connected(up: boolean): void {
    this.up = up;
    if (!up) {
      this.setReady();
      this.follower.outOfStep();
      return;
    }
    void this.openStore();
  }

  private async openStore(): Promise<void> {
    const nc = this.link.connection;
    if (nc === null || !this.up || this.closed) return;
    try {
      const { store, differs } = await TopicStore.open(nc, this.limits(), REQUEST_TIMEOUT_MS);
      if (differs !== null) this.log.warn({ broker: 'nats-jetstream' }, `${differs}; using it as it is`);
      this.store = store;
    } catch (e) {
      this.store = null;
      this.setReady();
      this.log.warn({ err: (e as Error).message, broker: 'nats-jetstream' }, 'JetStream unavailable; retrying');
      this.retry = setTimeout(() => void this.openStore(), this.backoff.next()).unref();
      return;
    }
    this.backoff.reset();
    this.lanes.forget();
    this.setReady();
    this.follower.resyncAll(nc);
    this.firstReady?.();
  }

  private limits(): StoreLimits {
    const c = this.config;
    return { perTopic: this.perTopic, maxAgeMs: Math.max(c.positionTtl, c.historyTtl) * 1000, duplicateWindowMs: c.idempotencyWindow * 1000, replicas: c.natsJetstreamReplicas };
  }

  private setReady(): void {
    const ready = this.ready();
    if (ready === this.stats.brokerUp || this.closed) return;
    this.stats.brokerUp = ready;
    this.log[ready ? 'info' : 'warn']({ broker: 'nats-jetstream' }, ready ? 'broker connected' : 'broker disconnected');
  }
}
