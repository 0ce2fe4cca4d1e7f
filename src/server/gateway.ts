import { App, type TemplatedApp, type us_listen_socket, type us_socket, us_listen_socket_close, us_socket_local_port } from 'uWebSockets.js';
import { Admitter } from '../auth/admission';
import { createVerifier } from '../auth/create-verifier';
import type { TokenVerifier } from '../auth/token-verifier';
import type { Broker } from '../broker/broker';
import { createBroker } from '../broker/create-broker';
import { keyedPublisher } from '../idempotency/jetstream-idempotency';
import type { ProcessTables } from '../shared/process-tables';
import type { Config } from '../config/schema';
import { Hooks } from '../hooks/hooks';
import type { Logger } from '../log';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import { Stats } from '../metrics/stats';
import { CloseCode, ErrorCode, GatewayError } from '../protocol/codes';
import { registerPage } from '../page/page-route';
import { Hub } from '../pubsub/hub';
import { CommandRate } from '../guard/command-rate';
import { type GuardMemory, UpgradeGuard } from '../guard/upgrade-guard';
import { containRoute, type FaultSink, faultSink } from './contain';
import { TopicRules } from '../rules/topic-rules';
import { PusherDoor, pusherRules } from '../pusher/pusher-door';
import { TopicQueries } from '../session/topic-queries';
import { ControlBus } from '../cluster/control-bus';
import { Presence } from '../session/presence';
import { ServerControl } from '../session/server-control';
import { registerControlRoutes } from './control-route';
import { closeSpread, spreadOver } from './drain';
import { listenExclusive } from './listen';
import { sendError, sendText, watchAbort } from './http-reply';
import { publishRoute } from './publish-route';
import { registerTopicRoutes } from './topics-route';
import { socketBehavior } from './socket-behavior';
import type { Socket } from './socket-door';
import { SessionCore } from '../session/core';
import { registerSse } from '../sse/sse-route';
import type { SseDoor } from '../sse/sse-door';
import { childApps } from '../workers/acceptor';

/** How a gateway runs inside a worker thread (--workers > 1); absent: a process of its own. */
export interface WorkerRole {
  /** The broker between the process's workers, built on this worker's hub; null: the configured one (--broker). */
  broker(hub: Hub, stats: Stats): Broker | null;
  /** /metrics for the whole process (the main thread aggregates every worker's). */
  metricsText(): Promise<string>;
  /** The process-wide guardrail counts, shared by every worker. */
  readonly guardMemory: GuardMemory;
  /** The tables every worker shares with the memory broker (idempotency keys, occupancy, webhook members). */
  readonly tables: ProcessTables;
}

/** One wsgate node: the uWS app, its hub, broker, metrics and lifecycle. */
export class Gateway {
  readonly stats = new Stats();
  readonly metrics: GatewayMetrics;
  readonly hub: Hub;
  readonly broker: Broker;
  readonly bus: ControlBus;
  readonly presence: Presence;
  private readonly hooks: Hooks;
  /** The Pusher Channels front door, when --pusher-apps names any. */
  private readonly pusher: PusherDoor | null;
  private readonly app: TemplatedApp;
  /** The --admin-port listener carrying the HTTP API, /metrics and health; null: they are on the public port. */
  private readonly admin: TemplatedApp | null;
  private readonly guard: UpgradeGuard;
  /** The Server-Sent Events front door, unless --sse-path is empty. */
  private readonly sse: SseDoor | null;
  private readonly sseHeartbeat: NodeJS.Timeout | null;
  private readonly sockets = new Set<Socket>();
  private readonly verifier: TokenVerifier | null;
  private listenSocket: us_listen_socket | null = null;
  private adminListenSocket: us_listen_socket | null = null;
  private draining = false;
  /** A worker's app receives connections from the acceptor (between start and drain). */
  private accepting = false;
  private closed = false;

  constructor(
    readonly config: Config,
    private readonly log: Logger,
    /** In a worker thread the process's acceptor listens and hands this app its connections. */
    private readonly role: WorkerRole | null = null,
  ) {
    this.app = App();
    this.metrics = new GatewayMetrics(this.stats, config.maxConnections, () => this.ready());
    const app = this.app;
    const rules = new TopicRules([...pusherRules(config), ...config.topics], { size: config.historySize, ttlMs: config.historyTtl * 1000 });
    this.hub = new Hub({ publish: (key, frame, binary) => app.publish(key, frame, binary) }, this.stats, this.metrics.fanoutDuration, {
      historyMaxBytes: config.historyMaxBytes,
      rules,
      positions: { ttlMs: config.positionTtl * 1000, max: config.positionMaxTopics },
      delta: { fullEvery: config.deltaFullEvery, minBytes: config.deltaMinBytes },
    });
    this.broker = role?.broker(this.hub, this.stats) ?? createBroker(config, this.hub, this.stats, this.metrics, log);
    this.bus = new ControlBus(this.broker.control ?? null, {
      heartbeatMs: Math.floor(config.nodeTtl / 3),
      nodeTtlMs: config.nodeTtl,
      queryTimeoutMs: config.clusterQueryTimeout,
    });
    const queries = new TopicQueries(this.hub, this.broker, this.bus);
    this.presence = new Presence(this.hub, this.bus, this.stats);
    const control = new ServerControl(this.bus);
    const fault = faultSink(this.stats, log);
    this.guard = new UpgradeGuard(config, this.stats, role?.guardMemory ?? null);
    this.registerGauges();
    const verifier = (this.verifier = createVerifier(config));
    this.hooks = new Hooks(config, this.hub, this.stats, this.metrics, log, keyedPublisher(this.broker), role?.tables ?? null);
    const admitter = new Admitter(verifier, this.hooks.connect);

    const core = new SessionCore({
      config,
      hub: this.hub,
      broker: this.broker,
      queries,
      presence: this.presence,
      control,
      stats: this.stats,
      admitter,
      proxies: this.hooks,
      events: this.hooks.events,
      idempotency: this.hooks.idempotency,
      log,
      guard: this.guard,
      isDraining: () => this.draining,
      fault,
    });
    app.ws(
      config.wsPath,
      socketBehavior({
        config,
        core,
        stats: this.stats,
        log,
        sockets: this.sockets,
        commandRate: new CommandRate(config.maxCommandsPerSecond, config.commandBurst),
        fault,
      }),
    );
    this.sse = config.ssePath === '' ? null : registerSse(app, { config, core, stats: this.stats, log, fault });
    if (this.sse !== null) this.hub.setSseWire(this.sse);
    const sse = this.sse;
    this.sseHeartbeat = sse === null ? null : setInterval(() => sse.heartbeat(), config.sseHeartbeat).unref();
    this.pusher = config.pusherApps === '' ? null : new PusherDoor(app, { config, hub: this.hub, broker: this.broker, stats: this.stats, guard: this.guard, log, fault, isDraining: () => this.draining, webhookDuration: this.metrics.webhookDuration, presence: this.presence, bus: this.bus, queries, control });
    if (this.pusher?.wantsOccupancy === true) this.hooks.onOccupancy(this.pusher.occupancyChanged);
    this.admin = config.adminPort !== 0 ? App() : null;
    // With --admin-port the API, metrics and health live on their own listener; the public port then
    // carries only upgrades, SSE and the page.
    this.registerOps(this.admin ?? app, queries, control, fault);
    this.registerWsGet(app);
    if (config.page) registerPage(app, config, log);
    for (const a of this.admin === null ? [app] : [app, this.admin]) {
      a.any('/*', (res) => sendError(res, '404 Not Found', new GatewayError(ErrorCode.NotFound, 'no such route')));
    }
  }

  /** Gauges of what presence and the upgrade guard hold, read at scrape time. */
  private registerGauges(): void {
    const m = this.metrics.metrics;
    const members = this.presence.registry;
    const holdings = this.presence.joinLeave.holdings;
    m.counter('wsgate_cluster_resyncs_total', 'Full resends of another node\'s holdings this node asked for (its heartbeat digest differed).', () => holdings.resends);
    m.gauge('wsgate_presence_entries', 'Presence members held by this node\'s connections (listed or only counted).', () => members.members);
    m.gauge('wsgate_client_addresses', 'Client addresses tracked for the per-address limits.', () => this.guard.addresses.size);
  }

  /** A plain GET on the WebSocket path (no upgrade headers) lands here: 426. */
  private registerWsGet(app: TemplatedApp): void {
    app.get(this.config.wsPath, (res) => {
      this.stats.upgrades.bad_request++;
      res
        .writeStatus('426 Upgrade Required')
        .writeHeader('sec-websocket-version', '13')
        .writeHeader('content-type', 'application/json')
        .end(JSON.stringify({ code: ErrorCode.BadRequest, reason: 'this path accepts WebSocket upgrades only' }));
    });
  }

  /** The HTTP API, metrics and health. */
  private registerOps(ops: TemplatedApp, queries: TopicQueries, control: ServerControl, fault: FaultSink): void {
    const { config } = this;
    ops.post('/publish', containRoute(fault, publishRoute(config, this.broker, this.hooks.idempotency, this.stats, fault)));
    registerTopicRoutes(ops, config, queries, this.presence, fault);
    registerControlRoutes(ops, config, control, this.stats, fault);
    ops.get('/healthz', (res) => sendText(res, '200 OK', 'ok'));
    ops.get('/readyz', containRoute(fault, (res) => {
      const reason = this.notReadyReason();
      sendText(res, reason === null ? '200 OK' : '503 Service Unavailable', reason ?? 'ready');
    }));
    ops.get('/metrics', containRoute(fault, (res) => {
      const abort = watchAbort(res);
      (this.role === null ? this.metrics.text() : this.role.metricsText()).then(
        (text) => sendText(res, '200 OK', text, this.metrics.metrics.contentType, abort),
        (e: Error) => sendText(res, '500 Internal Server Error', e.message, undefined, abort),
      );
    }));
  }

  /** The apps an acceptor hands connections to (public, admin), for a worker thread. */
  get descriptors(): { app: number; admin: number | null } {
    return { app: childApps(this.app).getDescriptor(), admin: this.admin === null ? null : childApps(this.admin).getDescriptor() };
  }

  /** Registers extra HTTP routes (the built-in page) before listen. */
  get uwsApp(): TemplatedApp {
    return this.app;
  }

  private notReadyReason(): string | null {
    if (this.draining) return 'draining';
    if (this.listenSocket === null && !this.accepting) return 'not listening';
    if (this.verifier !== null && !this.verifier.keys.loaded()) return 'JWT keys not loaded';
    if (this.config.brokerRequiredForReady && !this.broker.ready()) return 'broker not ready';
    // A node whose control subscriptions are not confirmed would miss the others' announcements.
    if (this.config.brokerRequiredForReady && !this.bus.up) return 'control bus not ready';
    return null;
  }

  ready(): boolean {
    return this.notReadyReason() === null;
  }

  /** Starts the broker and listens; resolves with the bound port. */
  async start(): Promise<number> {
    await this.broker.start();
    // A JWKS that cannot be fetched yet is not fatal: upgrades get 503 and /readyz says so until it loads.
    await this.verifier?.keys.ready();
    if (this.verifier !== null && !this.verifier.keys.loaded()) this.log.warn({ jwks: this.config.jwtJwksUrl }, 'JWKS not loaded yet; upgrades get 503 until it is');
    await this.hooks.start(this.bus);
    // Back after the broker was away (a partition, a broker restart): re-assert what this node occupies.
    this.bus.onRejoin(() => this.hooks.rejoined());
    if (this.role !== null) {
      this.accepting = true;
      return 0;
    }
    if (this.admin !== null) {
      this.adminListenSocket = await listenExclusive(this.admin, this.config.adminHost, this.config.adminPort, '--admin-port');
      this.log.info({ host: this.config.adminHost, port: this.config.adminPort }, 'admin listening');
    }
    this.listenSocket = await listenExclusive(this.app, this.config.host, this.config.port, '--port');
    const port = us_socket_local_port(this.listenSocket as unknown as us_socket);
    this.log.info({ host: this.config.host, port, broker: this.broker.kind }, 'listening');
    return port;
  }

  /**
   * Graceful drain: readiness goes false, no new connections, clients closed with 1012 over the drain
   * window, then the broker and timers stop.
   */
  async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    this.stats.draining = true;
    this.stopListening();
    this.accepting = false;
    await Promise.all([closeSpread(this.sockets, this.config.drainWindow, this.log), this.pusher?.drain(this.config.drainWindow), this.drainSse()]);
    await this.close();
  }

  /** Ends every SSE stream over the drain window (`event: close` 1012): EventSource reconnects elsewhere. */
  private drainSse(): Promise<void> {
    const sse = this.sse;
    if (sse === null) return Promise.resolve();
    return spreadOver(sse.streams, this.config.drainWindow, (h) => {
      if (h.done) return;
      h.session.closeReason = 'drain';
      sse.end(h, h.session, CloseCode.ServiceRestart, 'service restart');
    });
  }

  private stopListening(): void {
    if (this.listenSocket !== null) {
      us_listen_socket_close(this.listenSocket);
      this.listenSocket = null;
    }
  }

  /** Immediate shutdown: cuts remaining connections and releases everything. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopListening();
    if (this.adminListenSocket !== null) us_listen_socket_close(this.adminListenSocket);
    this.adminListenSocket = null;
    if (this.sseHeartbeat !== null) clearInterval(this.sseHeartbeat);
    this.app.close();
    this.bus.close();
    this.presence.close();
    this.admin?.close();
    this.guard.stop();
    await this.pusher?.close();
    await this.broker.close();
    await this.hooks.close();
    this.hub.close();
    this.metrics.stop();
  }
}
