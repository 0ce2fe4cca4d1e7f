import { parseOrigins } from '../guard/origin';
import { parseCidrs } from '../guard/client-address';
import { MAX_DEPTH_LIMIT } from '../protocol/depth';
import { parsePusherApps } from '../pusher/apps';
import { parseTopicRules, type TopicRuleConfig } from '../rules/topic-rules';

/** Every setting, its bounds and default. Flags are the kebab-case names, env vars WSGATE_<UPPER_SNAKE>. */
export interface Config {
  host: string;
  port: number;
  wsPath: string;
  ssePath: string;
  sseHeartbeat: number;
  maxPayload: number;
  maxDepth: number;
  maxTopicsPerConn: number;
  maxTopicLength: number;
  maxConnections: number;
  maxBackpressure: number;
  slowConsumer: 'disconnect' | 'drop';
  idleTimeout: number;
  clientPublish: boolean;
  apiKey: string;
  maxBatch: number;
  maxBody: number;
  jwtSecret: string;
  jwtPublicKey: string;
  jwtJwksUrl: string;
  jwtJwksMaxAge: number;
  jwtJwksCooldown: number;
  jwtAudience: string;
  jwtIssuer: string;
  jwtClockSkew: number;
  drainWindow: number;
  drainTimeout: number;
  workers: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  logFormat: 'auto' | 'json' | 'pretty';
  broker: string;
  brokerRequiredForReady: boolean;
  brokerLinger: number;
  brokerMaxPending: number;
  brokerTlsCa: string;
  brokerTlsCert: string;
  brokerTlsKey: string;
  natsJetstream: boolean;
  natsJetstreamReplicas: number;
  historySize: number;
  historyTtl: number;
  historyMaxBytes: number;
  deltaFullEvery: number;
  deltaMinBytes: number;
  positionTtl: number;
  nodeTtl: number;
  clusterQueryTimeout: number;
  positionMaxTopics: number;
  topics: readonly TopicRuleConfig[];
  demo: boolean;
  page: boolean;
  allowedOrigins: string;
  maxConnectionsPerIp: number;
  connectRatePerIp: number;
  trustedProxies: string;
  maxCommandsPerSecond: number;
  commandBurst: number;
  apiInsecure: boolean;
  adminPort: number;
  adminHost: string;
  connectProxyUrl: string;
  subscribeProxyUrl: string;
  publishProxyUrl: string;
  proxyTimeout: number;
  proxyMaxInflight: number;
  pusherApps: string;
  pusherClientEvents: boolean;
  pusherClientEventsPerSecond: number;
  pusherMaxEventBytes: number;
  pusherMaxChannelsPerEvent: number;
  pusherMaxBatchSize: number;
  pusherMaxPresenceMembers: number;
  pusherActivityTimeout: number;
  pusherPongTimeout: number;
  pusherWebhookUrl: string;
  webhookUrl: string;
  webhookSecret: string;
  webhookDelay: number;
  webhookMaxQueue: number;
  idempotencyWindow: number;
  idempotencyMaxKeys: number;
}

export type ConfigKey = keyof Config;

interface IntSpec {
  kind: 'int';
  def: number;
  min: number;
  max: number;
  /** Extra rule beyond min/max, with the text that explains it. */
  check?: { ok: (v: number) => boolean; rule: string };
}
interface StringSpec {
  kind: 'string';
  def: string;
  /** Extra rule, with the text that explains it. */
  check?: { ok: (v: string) => boolean; rule: string };
}
interface EnumSpec {
  kind: 'enum';
  def: string;
  values: readonly string[];
}
interface BoolSpec {
  kind: 'bool';
  def: boolean;
}
/** A structured value: a JSON string in flags and env, a JSON value in the config file. */
interface RulesSpec {
  kind: 'rules';
  def: readonly TopicRuleConfig[];
  parse: typeof parseTopicRules;
}
export type Spec = (IntSpec | StringSpec | EnumSpec | BoolSpec | RulesSpec) & { help: string; secret?: boolean };

const MiB = 1024 * 1024;

const httpUrl = { ok: (v: string) => v === '' || /^https?:\/\/[^\s/]+(\/\S*)?$/.test(v), rule: 'an http:// or https:// URL, or empty' };

export const schema: { readonly [K in ConfigKey]: Spec } = {
  host: { kind: 'string', def: '0.0.0.0', help: 'address to listen on' },
  port: { kind: 'int', def: 8080, min: 0, max: 65535, help: 'port to listen on (0 = any free port)' },
  wsPath: {
    kind: 'string',
    def: '/ws',
    help: 'WebSocket upgrade path',
    check: { ok: (v) => /^\/[A-Za-z0-9._\-/]*$/.test(v), rule: 'a path starting with /' },
  },
  ssePath: {
    kind: 'string',
    def: '/sse',
    help: 'Server-Sent Events path (GET ?topics=a,b; docs/protocol.md "Server-Sent Events"); empty = no SSE door',
    check: { ok: (v) => v === '' || /^\/[A-Za-z0-9._\-/]*$/.test(v), rule: 'a path starting with /, or empty' },
  },
  sseHeartbeat: { kind: 'int', def: 15_000, min: 1000, max: 600_000, help: 'milliseconds between SSE comment heartbeats (keep proxies from closing idle streams)' },
  maxPayload: { kind: 'int', def: 64 * 1024, min: 64, max: 16 * MiB, help: 'largest client message in bytes (larger: close 1009)' },
  maxDepth: {
    kind: 'int',
    def: 64,
    min: 1,
    max: MAX_DEPTH_LIMIT,
    help: 'deepest nesting of arrays/objects in published data (deeper: bad_frame / HTTP 400)',
  },
  maxTopicsPerConn: { kind: 'int', def: 256, min: 1, max: 100_000, help: 'subscriptions one connection may hold' },
  maxTopicLength: { kind: 'int', def: 128, min: 1, max: 255, help: 'longest topic name in bytes' },
  maxConnections: { kind: 'int', def: 0, min: 0, max: 10_000_000, help: 'open connections before upgrades get 503; 0 = what the open-files limit allows (limit − 128; 100000 where unknown); a larger value is lowered to that, with a warning' },
  maxBackpressure: { kind: 'int', def: 1 * MiB, min: 1024, max: 1024 * MiB, help: 'bytes buffered for one slow client before the slow-consumer policy applies' },
  slowConsumer: { kind: 'enum', def: 'disconnect', values: ['disconnect', 'drop'], help: 'slow-consumer policy: close with 4008, or drop messages and notify' },
  idleTimeout: {
    kind: 'int',
    def: 120,
    min: 0,
    max: 960,
    help: 'seconds without traffic before a connection is closed; pings are sent automatically (0 = never)',
    // uWS aborts the process for 1..8.
    check: { ok: (v) => v === 0 || v >= 9, rule: '0 or 9..960' },
  },
  clientPublish: { kind: 'bool', def: false, help: 'allow clients to publish over the socket' },
  apiKey: { kind: 'string', def: '', secret: true, help: 'bearer key required by POST /publish (empty = open)' },
  maxBatch: { kind: 'int', def: 1000, min: 1, max: 100_000, help: 'items in one POST /publish batch' },
  maxBody: { kind: 'int', def: 1 * MiB, min: 1024, max: 256 * MiB, help: 'bytes in one POST /publish body' },
  jwtSecret: { kind: 'string', def: '', secret: true, help: 'HS256 secret: require a JWT to connect' },
  jwtPublicKey: { kind: 'string', def: '', help: 'PEM public key file (RSA: RS256/384/512, EC P-256: ES256, P-384: ES384, Ed25519: EdDSA): require a JWT to connect' },
  jwtJwksUrl: {
    kind: 'string',
    def: '',
    help: "an OpenID provider's JWKS URL: require a JWT signed by one of its keys (fetched, cached and refreshed)",
    check: { ok: (v) => v === '' || /^https?:\/\/\S+$/.test(v), rule: 'an http:// or https:// URL' },
  },
  jwtJwksMaxAge: { kind: 'int', def: 600, min: 1, max: 86_400, help: 'seconds a fetched JWKS is used before it is refetched in the background' },
  jwtJwksCooldown: { kind: 'int', def: 30, min: 0, max: 3600, help: 'seconds after a JWKS fetch before a token with an unknown kid may trigger another' },
  jwtAudience: { kind: 'string', def: '', help: 'comma-separated accepted aud values: a token must name one (empty = not checked)' },
  jwtIssuer: { kind: 'string', def: '', help: 'required iss of tokens (empty = not checked)' },
  jwtClockSkew: { kind: 'int', def: 0, min: 0, max: 600, help: 'seconds of clock difference tolerated on exp and nbf' },
  drainWindow: { kind: 'int', def: 10_000, min: 0, max: 600_000, help: 'ms over which connections are closed with 1012 on SIGTERM' },
  drainTimeout: { kind: 'int', def: 25_000, min: 100, max: 3_600_000, help: 'ms after SIGTERM by which the process exits' },
  workers: {
    kind: 'string',
    def: '1',
    help: 'worker threads sharing the port, each a node of an in-process cluster (auto = os.availableParallelism(); 1 = no threads)',
    check: { ok: (v) => v === 'auto' || (/^[1-9]\d{0,2}$/.test(v) && Number(v) <= 256), rule: 'auto or an integer 1..256' },
  },
  logLevel: { kind: 'enum', def: 'info', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], help: 'log level' },
  logFormat: { kind: 'enum', def: 'auto', values: ['auto', 'json', 'pretty'], help: 'log lines: pretty (one readable line each), json (pino), or auto: pretty on a terminal, json otherwise' },
  broker: {
    kind: 'string',
    def: 'memory',
    help: 'memory (single node), nats://[user:pass@]host:port, tls://host:port (NATS over TLS), redis://[user:pass@]host:port[/db] or rediss://…',
    check: { ok: (v) => v === 'memory' || /^(nats|redis|rediss|tls):\/\/\S+$/.test(v), rule: 'memory, nats://host:port or redis://host:port' },
  },
  brokerRequiredForReady: { kind: 'bool', def: true, help: '/readyz answers 503 while the broker is down' },
  brokerLinger: { kind: 'int', def: 2000, min: 0, max: 600_000, help: 'ms a topic stays subscribed at the broker after its last local subscriber left' },
  brokerMaxPending: { kind: 'int', def: 10_000, min: 1, max: 1_000_000, help: 'publishes awaiting the broker before more are refused with unavailable' },
  brokerTlsCa: { kind: 'string', def: '', help: 'PEM file of the CA(s) that signed the broker certificate (tls:// or rediss:// only)' },
  brokerTlsCert: { kind: 'string', def: '', help: 'PEM client certificate file presented to the broker (with --broker-tls-key)' },
  brokerTlsKey: { kind: 'string', def: '', help: 'PEM private key file of the client certificate' },
  natsJetstream: { kind: 'bool', def: false, help: 'NATS broker: number, store and recover topics cluster-wide through JetStream (history, positions, idempotency keys)' },
  natsJetstreamReplicas: { kind: 'int', def: 1, min: 1, max: 5, help: 'with --nats-jetstream: replicas of the topics stream when the node creates it (a NATS cluster)' },
  historySize: { kind: 'int', def: 100, min: 0, max: 1_000_000, help: 'messages kept per topic for recovery (0 = no history)' },
  historyTtl: { kind: 'int', def: 300, min: 1, max: 86_400 * 7, help: 'seconds a message stays in history' },
  historyMaxBytes: { kind: 'int', def: 64 * MiB, min: 0, max: 64 * 1024 * MiB, help: 'bytes of history across all topics' },
  deltaFullEvery: { kind: 'int', def: 10, min: 1, max: 10_000, help: 'delta subscriptions (rule delta) get the full data whenever seq is a multiple of this, so at most this many - 1 deltas in a row' },
  deltaMinBytes: { kind: 'int', def: 256, min: 0, max: 64 * MiB, help: 'data smaller than this many bytes is sent in full to delta subscriptions (no delta computed)' },
  positionTtl: {
    kind: 'int',
    def: 86_400 * 7,
    min: 86_400,
    max: 86_400 * 30,
    help: 'seconds a topic\'s position (seq, epoch) is kept after its last subscriber left and its history expired',
  },
  positionMaxTopics: {
    kind: 'int',
    def: 100_000,
    min: 0,
    max: 10_000_000,
    help: 'topics whose position is remembered on the node, least recently used dropped first (~140 B each for short topics; 0 = none)',
  },
  nodeTtl: {
    kind: 'int',
    def: 10_000,
    min: 1000,
    max: 60_000,
    help: 'ms after which a node that stopped sending heartbeats (every nodeTtl/3) counts as gone, with its presence entries and webhook occupancy (cluster brokers)',
  },
  clusterQueryTimeout: {
    kind: 'int',
    def: 1000,
    min: 50,
    max: 30_000,
    help: 'ms a cluster-wide query (topic list, presence, server-side control) waits for the other nodes',
  },
  topics: {
    kind: 'rules',
    def: [],
    parse: parseTopicRules,
    help: 'per-topic options as a JSON array of rules, first match wins: [{"match":"chat.*","presence":true}] (keys below)',
  },
  demo: { kind: 'bool', def: false, help: 'publish a notification to topic "demo" every 2 s; topic "demo.chat" gets presence and join/leave' },
  page: { kind: 'bool', def: false, help: 'serve the built-in web page at /' },
  allowedOrigins: {
    kind: 'string',
    def: '',
    help: 'browser origins allowed to open a socket, comma-separated: https://app.example.com, https://*.example.com or * (no Origin and the gateway\'s own host are always allowed)',
    check: { ok: (v) => parseOrigins(v) !== null, rule: 'comma-separated origins (scheme://host[:port], scheme://*.domain) or *' },
  },
  maxConnectionsPerIp: { kind: 'int', def: 0, min: 0, max: 10_000_000, help: 'open connections per client address before upgrades get 429 (0 = no limit)' },
  connectRatePerIp: { kind: 'int', def: 0, min: 0, max: 1_000_000, help: 'upgrades per second per client address, burst of twice that, before 429 (0 = no limit)' },
  trustedProxies: {
    kind: 'string',
    def: '',
    help: 'CIDRs of proxies whose X-Forwarded-For names the client address (IPv4 and IPv6, comma-separated; empty = never trust the header)',
    check: { ok: (v) => parseCidrs(v) !== null, rule: 'comma-separated CIDRs or addresses, e.g. 10.0.0.0/8,fd00::/8' },
  },
  maxCommandsPerSecond: { kind: 'int', def: 100, min: 0, max: 1_000_000, help: 'commands per second per connection; over it: err rate_limited (0 = no limit)' },
  commandBurst: { kind: 'int', def: 200, min: 1, max: 1_000_000, help: 'commands a connection may send at once above --max-commands-per-second' },
  apiInsecure: { kind: 'bool', def: false, help: 'allow POST /publish to be reachable without --api-key (demo only)' },
  adminPort: { kind: 'int', def: 0, min: 0, max: 65535, help: 'serve the HTTP API, /metrics, /healthz and /readyz on this separate port instead of the public one (0 = public port)' },
  adminHost: { kind: 'string', def: '127.0.0.1', help: 'address of the --admin-port listener' },
  connectProxyUrl: { kind: 'string', def: '', check: httpUrl, help: 'application URL asked on every upgrade without a token: it answers the user and grants (docs/backend.md)' },
  subscribeProxyUrl: { kind: 'string', def: '', check: httpUrl, help: 'application URL asked before a subscription takes effect, for topics whose rule sets subscribeProxy' },
  publishProxyUrl: { kind: 'string', def: '', check: httpUrl, help: 'application URL asked before a client publish, for topics whose rule sets publishProxy (it may replace the data)' },
  proxyTimeout: { kind: 'int', def: 2000, min: 10, max: 60_000, help: 'ms an application proxy call or webhook POST may take before it counts as failed' },
  proxyMaxInflight: { kind: 'int', def: 1000, min: 1, max: 100_000, help: 'proxy calls in flight per node; more are answered unavailable at once' },
  pusherApps: {
    kind: 'string',
    def: '',
    secret: true,
    help: 'Pusher Channels apps served at /app/<key> and /apps/<id>/…: id:key:secret[,id:key:secret…] (docs/pusher.md)',
    check: { ok: (v) => parsePusherApps(v) !== null, rule: 'comma-separated id:key:secret triples, ids and keys unique' },
  },
  pusherClientEvents: { kind: 'bool', def: false, help: 'let Pusher clients send client-* events on private and presence channels' },
  pusherClientEventsPerSecond: { kind: 'int', def: 10, min: 1, max: 10_000, help: 'client events per second per Pusher connection (over it: pusher:error 4301)' },
  pusherMaxEventBytes: { kind: 'int', def: 10_240, min: 1, max: 1_048_576, help: 'bytes of one Pusher event\'s data (REST and client events)' },
  pusherMaxChannelsPerEvent: { kind: 'int', def: 100, min: 1, max: 10_000, help: 'channels one Pusher REST event may name' },
  pusherMaxBatchSize: { kind: 'int', def: 10, min: 1, max: 1_000, help: 'events in one Pusher batch_events call' },
  pusherMaxPresenceMembers: { kind: 'int', def: 100, min: 1, max: 100_000, help: 'users on one Pusher presence channel across the cluster; more are refused with pusher:subscription_error' },
  pusherActivityTimeout: { kind: 'int', def: 120, min: 1, max: 480, help: 'seconds of silence after which Pusher clients ping (sent in connection_established) and the server pings them' },
  pusherWebhookUrl: { kind: 'string', def: '', check: httpUrl, help: 'application URL that receives Pusher-format webhooks, signed with the app secret (X-Pusher-Signature; docs/pusher.md)' },
  pusherPongTimeout: { kind: 'int', def: 30, min: 1, max: 480, help: 'seconds a Pusher connection has to answer the server\'s pusher:ping before it is closed with 4201' },
  webhookUrl: { kind: 'string', def: '', check: httpUrl, help: 'application URL that receives signed, batched event webhooks (docs/backend.md)' },
  webhookSecret: { kind: 'string', def: '', secret: true, help: 'HMAC-SHA256 key of the X-Wsgate-Signature header (required with --webhook-url)' },
  webhookDelay: { kind: 'int', def: 3000, min: 0, max: 600_000, help: 'ms topic_vacated waits: a topic occupied again within it sends nothing' },
  webhookMaxQueue: { kind: 'int', def: 10_000, min: 1, max: 1_000_000, help: 'webhook events held while the application is slow or away; more are dropped and counted' },
  idempotencyWindow: { kind: 'int', def: 300, min: 1, max: 86_400, help: 'seconds a publish idempotencyKey is remembered (cluster-wide with Redis and NATS JetStream, per node otherwise)' },
  idempotencyMaxKeys: { kind: 'int', def: 100_000, min: 1, max: 10_000_000, help: 'idempotency keys one node remembers (memory and NATS brokers); the oldest go first' },
};

export const configKeys = Object.keys(schema) as ConfigKey[];
