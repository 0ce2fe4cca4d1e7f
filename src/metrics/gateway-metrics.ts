import { FixedHistogram, LATENCY_BOUNDS } from './histogram';
import { AllocationPerPublish, HeapAllocationMeter } from './heap-allocation';
import { PrototypeWatch } from './prototype-watch';
import { MetricsRegistry } from './registry';
import { PROXY_KINDS, type ProxyKind, type Stats } from './stats';

const entries = <K extends string>(r: Record<K, number>) => () => Object.entries(r) as [string, number][];

/** Every wsgate metric (docs/metrics.md), read from Stats at scrape time. */
export class GatewayMetrics {
  readonly metrics = new MetricsRegistry();
  readonly fanoutDuration = new FixedHistogram(LATENCY_BOUNDS);
  readonly brokerRoundtrip = new FixedHistogram(LATENCY_BOUNDS);
  readonly brokerLag = new FixedHistogram(LATENCY_BOUNDS);
  readonly webhookDuration = new FixedHistogram(LATENCY_BOUNDS);
  readonly proxyDuration: Readonly<Record<ProxyKind, FixedHistogram>> = {
    connect: new FixedHistogram(LATENCY_BOUNDS),
    subscribe: new FixedHistogram(LATENCY_BOUNDS),
    publish: new FixedHistogram(LATENCY_BOUNDS),
  };
  private readonly heap = new HeapAllocationMeter();
  private readonly prototypes = new PrototypeWatch();
  private readonly perPublish: AllocationPerPublish;

  constructor(
    readonly stats: Stats,
    maxConnections: number,
    readiness: () => boolean,
    allocationWindowMs = 5000,
  ) {
    const s = stats;
    const totalPublishes = () => s.publishes.socket + s.publishes.http + s.publishes.broker + s.publishes.demo;
    this.perPublish = new AllocationPerPublish(this.heap, totalPublishes, allocationWindowMs);
    const m = this.metrics;
    m.gauge('wsgate_connections', 'Open WebSocket connections.', () => s.connections);
    m.labeled('wsgate_protocol_connections', 'Open connections by front door: WebSockets and SSE streams (sum: wsgate_connections).', 'gauge', 'protocol', () => [['wsgate', s.connections - s.pusherConnections - s.sseConnections], ['pusher', s.pusherConnections], ['sse', s.sseConnections]]);
    m.labeled('wsgate_protocol_subscriptions', 'Subscriptions by front door (sum: wsgate_subscriptions).', 'gauge', 'protocol', () => [['wsgate', s.subscriptions - s.pusherSubscriptions - s.sseSubscriptions], ['pusher', s.pusherSubscriptions], ['sse', s.sseSubscriptions]]);
    m.counter('wsgate_pusher_frames_received_total', 'Frames received from Pusher clients.', () => s.pusherEvents);
    m.counter('wsgate_pusher_rest_refused_total', 'Pusher REST calls refused for their signature or timestamp (401).', () => s.pusherRestRefused);
    m.gauge('wsgate_pending_upgrades', 'Upgrades waiting for a token check or the connect proxy.', () => s.pendingUpgrades);
    m.gauge('wsgate_max_connections', 'Configured connection limit.', () => maxConnections);
    m.labeled('wsgate_connections_total', 'Upgrade attempts by outcome.', 'counter', 'result', entries(s.upgrades));
    m.labeled('wsgate_disconnects_total', 'Closed connections by reason.', 'counter', 'reason', entries(s.disconnects));
    m.gauge('wsgate_subscriptions', 'Subscriptions held by local connections.', () => s.subscriptions);
    m.gauge('wsgate_topics', 'Topics with at least one local subscriber.', () => s.topics);
    m.labeled('wsgate_messages_received_total', 'Client commands received by op.', 'counter', 'op', entries(s.received));
    m.labeled('wsgate_publishes_total', 'Messages fanned out by this node, by source.', 'counter', 'source', entries(s.publishes));
    m.counter('wsgate_deliveries_total', 'Local subscribers reached, summed over publishes.', () => s.deliveries);
    m.counter('wsgate_received_bytes_total', 'WebSocket payload bytes received from clients.', () => s.receivedBytes);
    m.counter('wsgate_sent_bytes_total', 'WebSocket payload bytes sent; a fanned-out frame counts once per subscriber.', () => s.sentBytes);
    m.labeled('wsgate_errors_total', 'Error replies sent, by code.', 'counter', 'code', () => s.errors.entries());
    m.labeled('wsgate_too_deep_total', 'Frames, bodies and broker messages refused for data nested deeper than --max-depth, by source.', 'counter', 'source', entries(s.tooDeep));
    m.gauge('wsgate_prototype_changes', 'Properties of Object.prototype and Array.prototype added, removed or replaced since start (0 unless polluted).', () => this.prototypes.changes());
    m.counter('wsgate_slow_consumer_drops_total', 'Messages not delivered because a client send buffer was full.', () => s.slowConsumerDrops);
    m.counter('wsgate_slow_consumer_disconnects_total', 'Connections closed with 4008 (policy disconnect).', () => s.slowConsumerDisconnects);
    m.histogram('wsgate_publish_fanout_duration_seconds', 'From a publish entering the node to the native fan-out call returning; one client publish in 16 is timed, every broker message.', this.fanoutDuration);
    m.labeled('wsgate_http_publish_requests_total', 'POST /publish requests by result.', 'counter', 'result', entries(s.httpPublish));
    m.counter('wsgate_heap_allocated_bytes_total', 'JS heap bytes allocated by the process, measured (V8 allocation counter or GC statistics).', () => this.heap.sample());
    m.gauge('wsgate_heap_allocated_bytes_per_publish', 'JS heap bytes allocated per publish over the last window, leaving out what rendering /metrics allocated.', () => this.perPublish.value);
    m.labeled('wsgate_heap_meter_collections_total', 'Full GCs the heap-allocation meter asked V8 for, to free stopped GC profilers (none where V8 counts allocations itself).', 'counter', 'kind', () => Object.entries(this.heap.collections));
    m.gauge('wsgate_draining', '1 while the node drains.', () => (s.draining ? 1 : 0));
    m.gauge('wsgate_ready', '1 when /readyz answers 200.', () => (readiness() ? 1 : 0));
    m.gauge('wsgate_history_entries', 'Messages retained in history.', () => s.historyEntries);
    m.gauge('wsgate_history_bytes', 'Bytes retained in history.', () => s.historyBytes);
    m.gauge('wsgate_remembered_positions', 'Positions (seq, epoch) kept for topics the node holds no state for.', () => s.rememberedPositions);
    m.labeled('wsgate_recoveries_total', 'Subscriptions with since, by outcome.', 'counter', 'outcome', entries(s.recoveries));
    m.counter('wsgate_replayed_messages_total', 'Messages replayed from history.', () => s.replayed);
    m.labeled('wsgate_server_api_calls_total', 'Server API calls (POST /disconnect, /subscribe, /unsubscribe) run, by call.', 'counter', 'call', entries(s.serverApi));
    m.labeled('wsgate_server_api_refused_total', 'Server API calls refused (bad request, API key, body size), by call.', 'counter', 'call', entries(s.serverApiRefused));
    m.labeled('wsgate_join_leave_events_total', 'Join/leave notices fanned out by this node (once each, however many subscribers).', 'counter', 'op', entries(s.joinLeave));
    m.counter('wsgate_epoch_resets_total', 'Epoch changes of topics with local subscribers (each announced with a reset notice).', () => s.epochResets);
    m.counter('wsgate_last_message_hits_total', 'Subscribers sent the topic\'s latest message on subscribe (rule lastMessage).', () => s.lastMessageHits);
    m.labeled('wsgate_delta_deliveries_total', 'Deliveries to delta subscriptions (rule delta), by kind (a delta, or the full data).', 'counter', 'kind', entries(s.deltaDeliveries));
    m.counter('wsgate_delta_sent_bytes_total', 'Bytes of deliveries sent to delta subscriptions.', () => s.deltaSentBytes);
    m.counter('wsgate_delta_bytes_saved_total', 'Bytes delta subscriptions would have received more as full deliveries (sent + saved = without delta).', () => s.deltaSavedBytes);
    m.counter('wsgate_delta_computed_total', 'Deltas computed (once per publish and codec, whatever the subscriber count).', () => s.deltaComputed);
    m.counter('wsgate_delta_seconds_total', 'Time spent computing and framing deltas (single-threaded: CPU time).', () => s.deltaSeconds);
    m.gauge('wsgate_broker_up', '1 while the broker connection is up.', () => (s.brokerUp ? 1 : 0));
    m.counter('wsgate_broker_published_total', 'Messages sent to the broker.', () => s.brokerPublished);
    m.counter('wsgate_broker_received_total', 'Messages received from the broker.', () => s.brokerReceived);
    m.labeled('wsgate_broker_bytes_total', 'Bytes through the broker.', 'counter', 'direction', () => [['out', s.brokerBytesOut], ['in', s.brokerBytesIn]]);
    m.counter('wsgate_broker_failures_total', 'Messages that could not be forwarded to the broker.', () => s.brokerFailures);
    m.counter('wsgate_broker_rejected_total', 'Broker messages ignored: not a wsgate envelope, or data malformed or nested deeper than --max-depth.', () => s.brokerRejected);
    m.counter('wsgate_broker_refilled_total', 'Messages missed during a broker outage (or a gap) and fanned out from the broker\'s history after it (Redis, NATS JetStream).', () => s.brokerRefilled);
    m.gauge('wsgate_broker_subscriptions', 'Topic interests held at the broker.', () => s.brokerSubscriptions);
    m.histogram('wsgate_broker_roundtrip_seconds', 'Round trip to the broker: own publish to its echo (Redis, NATS JetStream), PING to PONG (NATS).', this.brokerRoundtrip);
    m.labeled('wsgate_handler_errors_total', 'Unexpected exceptions contained to one connection (closed 1011) or request (500), by handler.', 'counter', 'handler', entries(s.handlerErrors));
    m.counter('wsgate_commands_rate_limited_total', 'Commands refused with rate_limited (--max-commands-per-second).', () => s.commandsRateLimited);
    m.histogram('wsgate_broker_lag_seconds', 'From a publish on another node to its receipt here (wall clocks of both nodes).', this.brokerLag);
    m.labeledCounters('wsgate_proxy_calls_total', 'Application proxy calls by kind and result.', () =>
      PROXY_KINDS.flatMap((kind) => Object.entries(s.proxy[kind]).map(([result, value]) => ({ value, labels: { kind, result } }))),
    );
    m.counter('wsgate_idempotent_repeats_total', 'Publishes answered with the first seq because their idempotencyKey was seen within the window.', () => s.idempotentRepeats);
    m.gauge('wsgate_idempotency_keys', 'Idempotency keys held by this node (node-local store).', () => s.idempotencyKeys);
    m.counter('wsgate_idempotency_evicted_total', 'Node-local idempotency keys forgotten before their window ended (key cap).', () => s.idempotencyEvicted);
    m.labeled('wsgate_webhook_events_total', 'Webhook events by result: sent, failed (given up after retries), dropped (queue full).', 'counter', 'result', entries(s.webhookEvents));
    m.counter('wsgate_webhook_retries_total', 'Webhook POSTs retried after a failure, timeout or 5xx.', () => s.webhookRetries);
    m.gauge('wsgate_webhook_queue', 'Webhook events waiting to be sent.', () => s.webhookQueued);
    m.counter('wsgate_webhook_outbox_full_total', 'Occupancy webhooks not kept in the ledger outbox (full): lost if this node dies before sending them.', () => s.webhookOutboxFull);
    m.counter('wsgate_webhook_taken_over_total', 'Occupancy webhooks of gone nodes taken over from their ledger outbox and sent by this node.', () => s.webhookTakenOver);
    m.counter('wsgate_webhook_resent_total', 'Occupancy webhooks of this node\'s own ledger outbox sent again: decided by a call whose reply was lost with the connection, or left unsent.', () => s.webhookResent);
    m.histogram('wsgate_webhook_duration_seconds', 'Webhook POST duration (each attempt).', this.webhookDuration);
    m.labeledHistograms('wsgate_proxy_duration_seconds', 'Application proxy call duration by kind (answers and failures).', 'kind', PROXY_KINDS.map((k) => [k, this.proxyDuration[k]]));
  }

  /** The /metrics text; what rendering it allocates is left out of the per-publish figure. */
  async text(): Promise<string> {
    const before = this.heap.sample();
    const text = await this.metrics.text();
    this.perPublish.exclude(this.heap.sample() - before);
    return text;
  }

  stop(): void {
    this.perPublish.stop();
    this.heap.stop();
  }
}
