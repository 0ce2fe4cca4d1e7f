import type { NatsConnection, Subscription } from 'nats';
import type { Config } from '../config/schema';
import type { Logger } from '../log';
import type { GatewayMetrics } from '../metrics/gateway-metrics';
import type { PublishSource, Stats } from '../metrics/stats';
import type { Payload } from '../protocol/payload';
import type { Hub } from '../pubsub/hub';
import { newEpoch } from '../pubsub/topic-state';
import type { Broker, PublishOutcome } from './broker';
import { encodeEnvelope } from './envelope';
import { InterestTable, type InterestTarget } from './interest';
import { raceTimeout } from './lifecycle';
import { NatsLink } from './nats-link';
import { EnvelopeReceiver } from './receiver';
import type { ControlTransport } from '../cluster/control-bus';
import { publishWallTime } from '../metrics/publish-clock';

/** Longest a `sub` waits for its broker subscription to be confirmed before it is answered anyway. */
const LIVE_TIMEOUT_MS = 2000;
/** Envelopes held for the end of a turn before they are sent at once (bounds the outbox). */
const OUTBOX_MAX = 1024;
/** How often the broker round trip (PING → PONG) is sampled; the node gets no echo of its own publishes. */
const RTT_SAMPLE_MS = 1000;

/**
 * A topic's subject. Topics may hold "." (a NATS token separator, where "a..b" would be an invalid
 * subject); "%" cannot occur in a topic, so replacing "." with it is injective and keeps one token.
 */
const subjectOf = (topic: string): string => 'wsgate.t.' + topic.replaceAll('.', '%');

/**
 * Core NATS fan-out. NATS core has no sequencer, so a node delivers its own publishes to its local
 * subscribers at once (numbered like a single node) and forwards them with `noEcho`, and numbers other
 * nodes' messages as they arrive (epoch per node and per interest period): delivery is exactly-once and
 * in each publisher's order, recovery works on the node that served the client, and a client moving to
 * another node gets `recovered:false` with that node's position. `--nats-jetstream` (JetStreamBroker)
 * numbers cluster-wide instead.
 */
export class NatsBroker implements Broker, InterestTarget {
  readonly kind = 'nats';
  private readonly nodeId = newEpoch();
  private readonly link: NatsLink;
  readonly control: ControlTransport;
  private readonly interest: InterestTable;
  private readonly receiver: EnvelopeReceiver;
  private readonly subs = new Map<string, Subscription>();
  /** Broker subscriptions sent and not yet confirmed (a flush round trip), by topic. */
  private readonly confirming = new Map<string, Promise<void>>();
  private nc: NatsConnection | null = null;
  private up = false;
  private readonly rttTimer: NodeJS.Timeout;
  /** Envelopes for the other nodes, sent together at the end of this event-loop turn (see forward()). */
  private readonly outSubjects: string[] = [];
  private readonly outEnvelopes: Buffer[] = [];
  private outScheduled = false;
  private readonly flushOutbox = (): void => this.sendOutbox();
  private firstConnect: (() => void) | null = null;

  constructor(
    url: string,
    config: Config,
    private readonly hub: Hub,
    private readonly stats: Stats,
    metrics: GatewayMetrics,
    private readonly log: Logger,
  ) {
    this.interest = new InterestTable(this, config.brokerLinger, stats);
    this.receiver = new EnvelopeReceiver(hub, stats, metrics.brokerRoundtrip, metrics.brokerLag, (t) => this.interest.has(t), this.nodeId, false, log, config.maxDepth);
    hub.addInterestListener(this.interest);
    this.rttTimer = setInterval(() => this.sampleRtt(metrics), RTT_SAMPLE_MS).unref();
    this.link = new NatsLink(url, config, this.nodeId, { noEcho: true }, {
      connected: (nc) => {
        this.nc = nc;
        for (const topic of this.interest.topics()) this.subscribeSubject(topic);
        this.firstConnect?.();
      },
      status: (up) => this.setUp(up),
      lost: () => {
        this.nc = null;
        this.subs.clear();
      },
    }, log, 'nats');
    this.control = this.link.control;
  }

  /** Connects in the background: a node whose broker is down still starts and serves local clients. */
  async start(): Promise<void> {
    const connected = new Promise<void>((resolve) => (this.firstConnect = resolve));
    this.link.dial();
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
    this.forward(subjectOf(topic), encodeEnvelope(topic, 0, '', publishWallTime(startedAt), this.nodeId, source, payload));
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
    clearInterval(this.rttTimer);
    this.interest.close();
    this.subs.clear();
    this.up = false;
    this.stats.brokerUp = false;
    this.nc = null;
    await this.link.close();
  }

  private sampleRtt(metrics: GatewayMetrics): void {
    const nc = this.nc;
    if (!this.up || nc === null) return;
    nc.rtt().then(
      (ms) => metrics.brokerRoundtrip.observe(ms / 1000),
      () => undefined, // a lost PONG shows as the disconnect nats.js reports
    );
  }

  private setUp(up: boolean): void {
    this.up = up;
    this.stats.brokerUp = up;
    this.log[up ? 'info' : 'warn']({ broker: 'nats' }, up ? 'broker connected' : 'broker disconnected');
  }
}
