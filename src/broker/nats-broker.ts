import { type ConnectionOptions, type NatsConnection, type Subscription, connect } from 'nats';
import type { Config } from '../config/schema';
import type { Logger } from '../log';
import type { GatewayMetrics } from '../metrics/gateway-metrics';
import type { PublishSource, Stats } from '../metrics/stats';
import type { Payload } from '../protocol/payload';
import type { Hub } from '../pubsub/hub';
import { newEpoch } from '../pubsub/topic-state';
import type { Broker, PublishOutcome } from './broker';
import { brokerTls, type BrokerTls } from './broker-tls';
import { encodeEnvelope } from './envelope';
import { InterestTable, type InterestTarget } from './interest';
import { Backoff, raceTimeout } from './lifecycle';
import { EnvelopeReceiver } from './receiver';
import type { ControlTransport } from '../cluster/control-bus';

/** Longest a `sub` waits for its broker subscription to be confirmed before it is answered anyway. */
const LIVE_TIMEOUT_MS = 2000;
/** Envelopes held for the end of a turn before they are sent at once (bounds the outbox). */
const OUTBOX_MAX = 1024;
/** How often the broker round trip (PING → PONG) is sampled; the node gets no echo of its own publishes. */
const RTT_SAMPLE_MS = 1000;

/** `nats://[user:pass@|token@]host:port` or `tls://…` (TLS required, with optional CA and client certificate) into nats.js options. */
export function natsOptions(url: string, tls: BrokerTls | null = null): ConnectionOptions {
  const u = new URL(url);
  const options: ConnectionOptions = { servers: `${u.hostname}:${u.port || '4222'}` };
  if (u.protocol === 'tls:') options.tls = { ...tls };
  const user = decodeURIComponent(u.username);
  const pass = decodeURIComponent(u.password);
  if (user !== '' && pass !== '') {
    options.user = user;
    options.pass = pass;
  } else if (user !== '') options.token = user;
  return options;
}

/**
 * A topic's subject. Topics may hold "." (a NATS token separator, where "a..b" would be an invalid
 * subject); "%" cannot occur in a topic, so replacing "." with it is injective and keeps one token.
 */
/** Control messages between nodes (ControlBus): `wsgate.ctl` to all, `wsgate.ctl.<node>` to one. */
const CONTROL_SUBJECT = 'wsgate.ctl';

const subjectOf = (topic: string): string => 'wsgate.t.' + topic.replaceAll('.', '%');

/**
 * Core NATS fan-out. NATS core has no sequencer, so a node delivers its own publishes to its local
 * subscribers at once (numbered like a single node) and forwards them with `noEcho`, and numbers other
 * nodes' messages as they arrive (epoch per node and per interest period): delivery is exactly-once and
 * in each publisher's order, recovery works on the node that served the client, and a client moving to
 * another node gets `recovered:false` with that node's position. docs/cluster.md explains why not
 * JetStream.
 */
export class NatsBroker implements Broker, InterestTarget {
  readonly kind = 'nats';
  private readonly nodeId = newEpoch();
  private receiveControl: (message: Buffer) => void = () => {};
  readonly control: ControlTransport = {
    nodeId: this.nodeId,
    send: (to, message) => {
      if (this.up && this.nc !== null) this.nc.publish(to === null ? CONTROL_SUBJECT : CONTROL_SUBJECT + '.' + to, message);
    },
    onControl: (receive) => (this.receiveControl = receive),
    isUp: () => this.controlLive,
    onUp: (listener) => (this.controlUp = listener),
  };
  private controlUp: () => void = () => {};
  /** Connected, and the control subscriptions confirmed by a PING/PONG after them. */
  private controlLive = false;
  private readonly interest: InterestTable;
  private readonly receiver: EnvelopeReceiver;
  private readonly subs = new Map<string, Subscription>();
  /** Broker subscriptions sent and not yet confirmed (a flush round trip), by topic. */
  private readonly confirming = new Map<string, Promise<void>>();
  private readonly backoff = new Backoff(100, 5000);
  private nc: NatsConnection | null = null;
  private up = false;
  private closed = false;
  private retry: NodeJS.Timeout | null = null;
  private readonly rttTimer: NodeJS.Timeout;
  /** Envelopes for the other nodes, sent together at the end of this event-loop turn (see forward()). */
  private readonly outSubjects: string[] = [];
  private readonly outEnvelopes: Buffer[] = [];
  private outScheduled = false;
  private readonly flushOutbox = (): void => this.sendOutbox();
  private firstConnect: (() => void) | null = null;

  constructor(
    private readonly url: string,
    private readonly config: Config,
    private readonly hub: Hub,
    private readonly stats: Stats,
    metrics: GatewayMetrics,
    private readonly log: Logger,
  ) {
    this.interest = new InterestTable(this, config.brokerLinger, stats);
    this.receiver = new EnvelopeReceiver(hub, stats, metrics.brokerRoundtrip, metrics.brokerLag, (t) => this.interest.has(t), this.nodeId, false, log, config.maxDepth);
    hub.addInterestListener(this.interest);
    this.rttTimer = setInterval(() => this.sampleRtt(metrics), RTT_SAMPLE_MS).unref();
  }

  /** Connects in the background: a node whose broker is down still starts and serves local clients. */
  async start(): Promise<void> {
    const connected = new Promise<void>((resolve) => (this.firstConnect = resolve));
    this.dial();
    await raceTimeout(connected, 2000);
  }

  ready(): boolean {
    return this.up;
  }

  /**
   * Local subscribers first, exactly as on a single node, then one envelope to the other nodes. With the
   * broker away the local fan-out goes on and the message is counted as not forwarded: nothing is
   * queued for later (nats.js would buffer while reconnecting, so it is not even handed over).
   */
  publish(topic: string, payload: Payload, source: PublishSource, startedAt: number): PublishOutcome {
    const seq = this.hub.deliver(topic, payload, source, startedAt);
    if (!this.up || this.nc === null) {
      this.stats.brokerFailures++;
      return seq;
    }
    this.forward(subjectOf(topic), encodeEnvelope(topic, 0, '', performance.timeOrigin + startedAt, this.nodeId, source, payload));
    return seq;
  }

  /**
   * nats.js writes its socket in a microtask, and uWS runs microtasks after every message handler, so
   * publishing at once cost one write per publish (counted with perf: ~2,000 writes/s at 2,000
   * publishes/s), and the other nodes got them one per read, each read a fan-out pass with a write to
   * every subscriber. Held to the end of the turn, a read's worth of publishes leaves in one write and
   * arrives as one batch.
   */
  private forward(subject: string, env: Buffer): void {
    this.outSubjects.push(subject);
    this.outEnvelopes.push(env);
    if (this.outEnvelopes.length >= OUTBOX_MAX) this.sendOutbox();
    else if (!this.outScheduled) {
      this.outScheduled = true;
      setImmediate(this.flushOutbox);
    }
  }

  private sendOutbox(): void {
    this.outScheduled = false;
    const nc = this.nc;
    const n = this.outEnvelopes.length;
    for (let i = 0; i < n; i++) {
      const env = this.outEnvelopes[i] as Buffer;
      try {
        if (!this.up || nc === null) throw new Error('broker down');
        nc.publish(this.outSubjects[i] as string, env);
        this.stats.brokerPublished++;
        this.stats.brokerBytesOut += env.length;
      } catch {
        this.stats.brokerFailures++;
      }
    }
    this.outSubjects.length = 0;
    this.outEnvelopes.length = 0;
  }

  subscribeTopic(topic: string): void {
    // The node may have missed messages while it held no interest: its old numbering cannot recover.
    this.hub.restart(topic);
    this.subscribeSubject(topic);
  }

  whenLive(topic: string): Promise<void> | null {
    return this.confirming.get(topic) ?? null;
  }

  private subscribeSubject(topic: string): void {
    const nc = this.nc;
    if (nc === null || nc.isClosed()) return; // subscribed on connect
    this.subs.set(
      topic,
      nc.subscribe(subjectOf(topic), { callback: (err, msg) => err === null && this.receiver.receive(Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength)) }),
    );
    // The server has the SUB once it answers a PING sent after it.
    const confirmed: Promise<void> = raceTimeout(nc.flush(), LIVE_TIMEOUT_MS).then(() => {
      if (this.confirming.get(topic) === confirmed) this.confirming.delete(topic);
    });
    this.confirming.set(topic, confirmed);
  }

  unsubscribeTopic(topic: string): void {
    this.subs.get(topic)?.unsubscribe();
    this.subs.delete(topic);
    this.confirming.delete(topic);
  }

  async close(): Promise<void> {
    this.sendOutbox();
    this.closed = true;
    if (this.retry !== null) clearTimeout(this.retry);
    clearInterval(this.rttTimer);
    this.interest.close();
    this.subs.clear();
    this.up = false;
    this.controlLive = false;
    this.stats.brokerUp = false;
    const nc = this.nc;
    this.nc = null;
    // Bounded: a broker that does not answer must not hold up shutdown.
    if (nc !== null) await raceTimeout(nc.close(), 2000);
  }

  /**
   * First connection, retried with backoff. Once connected, nats.js reconnects by itself (forever) and
   * restores every subscription, so later outages are only watched through status events.
   */
  private dial(): void {
    if (this.closed) return;
    connect({ ...natsOptions(this.url, brokerTls(this.config)), name: `wsgate-${this.nodeId}`, noEcho: true, maxReconnectAttempts: -1, reconnectTimeWait: 250, reconnectJitter: 250, pingInterval: 5000, maxPingOut: 2 }).then(
      (nc) => {
        if (this.closed) {
          void nc.close();
          return;
        }
        this.nc = nc;
        this.setUp(true);
        for (const topic of this.interest.topics()) this.subscribeSubject(topic);
        // nats.js restores these on its own reconnects; a fresh connection needs them again.
        for (const subject of [CONTROL_SUBJECT, CONTROL_SUBJECT + '.' + this.nodeId]) {
          nc.subscribe(subject, { callback: (err, msg) => err === null && this.receiveControl(Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength)) });
        }
        this.confirmControl(nc);
        this.firstConnect?.();
        void this.watch(nc);
      },
      (e: Error) => {
        this.log.warn({ err: e.message, broker: 'nats' }, 'broker unreachable; retrying');
        this.retry = setTimeout(() => this.dial(), this.backoff.next()).unref();
      },
    );
  }

  private async watch(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') this.setUp(false);
      else if (s.type === 'reconnect') {
        this.setUp(true);
        // nats.js sent the subscriptions again on reconnecting; a round trip confirms them.
        this.confirmControl(nc);
      }
    }
    // The status stream ends when the connection closes for good (not by us: nats.js retries forever).
    if (!this.closed) {
      this.setUp(false);
      this.nc = null;
      this.subs.clear();
      this.dial();
    }
  }

  private sampleRtt(metrics: GatewayMetrics): void {
    const nc = this.nc;
    if (!this.up || nc === null) return;
    nc.rtt().then(
      (ms) => metrics.brokerRoundtrip.observe(ms / 1000),
      () => undefined, // a lost PONG shows as the disconnect nats.js reports
    );
  }

  /** The control bus is up once the server has this node's control subscriptions (a PING sent after them answered). */
  private confirmControl(nc: NatsConnection): void {
    nc.flush().then(
      () => {
        if (!this.up || this.nc !== nc || this.controlLive) return;
        this.controlLive = true;
        this.controlUp();
      },
      () => undefined, // the disconnect that follows is reported by the status stream
    );
  }

  private setUp(up: boolean): void {
    if (!up) this.controlLive = false;
    if (up === this.up) return;
    this.up = up;
    this.stats.brokerUp = up;
    if (up) this.backoff.reset();
    this.log[up ? 'info' : 'warn']({ broker: 'nats' }, up ? 'broker connected' : 'broker disconnected');
  }
}
