import type { ConnectionOptions, NatsConnection } from 'nats';
import { nats } from '../optional-deps';
import type { ControlTransport } from '../cluster/control-bus';
import type { Config } from '../config/schema';
import type { Logger } from '../log';
import { brokerTls, type BrokerTls } from './broker-tls';
import { Backoff, raceTimeout } from './lifecycle';

/** Control messages between nodes (ControlBus): `wsgate.ctl` to all, `wsgate.ctl.<node>` to one. */
const CONTROL_SUBJECT = 'wsgate.ctl';

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

/** What a broker does as its NATS connection comes and goes. */
export interface NatsLinkEvents {
  /** A new connection (the first, or one after a connection closed for good): subscribe what is needed. */
  connected(nc: NatsConnection): void;
  /** Up or down: a new connection, nats.js's own disconnects and reconnects (which restore subscriptions). */
  status(up: boolean): void;
  /** The connection closed for good (not by us); a new one is dialed. */
  lost(): void;
}

/**
 * One broker's NATS connection, kept open: the first dial retried with backoff (a node whose broker is
 * down still starts and serves local clients), nats.js's own reconnects (forever) followed through its
 * status events, a connection closed for good dialed again. Carries the control messages between nodes.
 */
export class NatsLink {
  private nc: NatsConnection | null = null;
  private up = false;
  private closed = false;
  private retry: NodeJS.Timeout | null = null;
  private readonly backoff = new Backoff(100, 5000);
  private receiveControl: (message: Buffer) => void = () => {};
  readonly control: ControlTransport;
  private controlUp: () => void = () => {};
  /** Connected, and the control subscriptions confirmed by a PING/PONG after them. */
  private controlLive = false;

  constructor(
    private readonly url: string,
    private readonly config: Config,
    private readonly nodeId: string,
    /** nats.js options beyond the URL's (noEcho). */
    private readonly extra: Partial<ConnectionOptions>,
    private readonly events: NatsLinkEvents,
    private readonly log: Logger,
    /** The broker's name in logs. */
    private readonly broker: string,
  ) {
    this.control = {
      nodeId,
      send: (to, message) => {
        if (this.up && this.nc !== null) this.nc.publish(to === null ? CONTROL_SUBJECT : CONTROL_SUBJECT + '.' + to, message);
      },
      onControl: (receive) => (this.receiveControl = receive),
      isUp: () => this.controlLive,
      onUp: (listener) => (this.controlUp = listener),
    };
  }

  /** The connection, null before the first one and after one closed for good. */
  get connection(): NatsConnection | null {
    return this.nc;
  }

  get isUp(): boolean {
    return this.up;
  }

  dial(): void {
    if (this.closed) return;
    const options = { ...natsOptions(this.url, brokerTls(this.config)), name: `wsgate-${this.nodeId}`, maxReconnectAttempts: -1, reconnectTimeWait: 250, reconnectJitter: 250, pingInterval: 5000, maxPingOut: 2, ...this.extra };
    nats().connect(options).then(
      (nc) => {
        if (this.closed) return void nc.close();
        this.nc = nc;
        // nats.js restores these on its own reconnects; a fresh connection needs them again.
        for (const subject of [CONTROL_SUBJECT, CONTROL_SUBJECT + '.' + this.nodeId]) {
          nc.subscribe(subject, { callback: (err, msg) => err === null && this.receiveControl(Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength)) });
        }
        this.events.connected(nc);
        this.setUp(true);
        this.confirmControl(nc);
        void this.watch(nc);
      },
      (e: Error) => {
        this.log.warn({ err: e.message, broker: this.broker }, 'broker unreachable; retrying');
        this.retry = setTimeout(() => this.dial(), this.backoff.next()).unref();
      },
    );
  }

  /** Closes the connection; bounded, so a broker that does not answer cannot hold up shutdown. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.retry !== null) clearTimeout(this.retry);
    this.up = false;
    this.controlLive = false;
    const nc = this.nc;
    this.nc = null;
    if (nc !== null) await raceTimeout(nc.close(), 2000);
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
      this.events.lost();
      this.dial();
    }
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
    if (up) this.backoff.reset();
    this.events.status(up);
  }
}
