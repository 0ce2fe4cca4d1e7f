import { DialectName } from '../lib/dialect';

/** Where and how the generator connects. */
export interface TargetSpec {
  host: string;
  port: number;
  dialect: DialectName;
  /** HTTP path for POST /publish (wsgate only). */
  publishPath?: string;
}

export interface ConnectCmd {
  cmd: 'connect';
  role: 'sub' | 'pub';
  /** Global index of the first connection (spreads source addresses, names publishers). */
  first: number;
  count: number;
  numTopics: number;
  numPublishers: number;
  concurrency: number;
  timeoutMs: number;
  /** Connection i goes to ports[i % length] (subscribers spread over cluster nodes); default: the target's. */
  ports?: number[];
  /** Topics each subscriber holds (consecutive topic numbers from its own); default 1. */
  topicsPerConn?: number;
}

/** `listen`: publish nothing, just receive (generator self-test against the blaster). */
export type PublishMode = 'max' | 'rate' | 'http' | 'listen';

/** What to publish and how: shared by the controller's run (GenRun) and the workers' publish command. */
export interface PublishPlan {
  mode: PublishMode;
  /** Offered publishes/s over all publishers (mode `rate`). */
  rate: number;
  durationMs: number;
  payloadBytes: number;
  numTopics: number;
  /** Subscribers per topic: deliveries expected per publish. */
  fanout: number;
  /** Max in flight deliveries per subscriber (mode `max`). */
  windowPerSub: number;
  totalSubs: number;
  /** Concurrent HTTP connections (mode `http`). */
  httpConnections: number;
}

export interface PublishCmd extends PublishPlan {
  cmd: 'publish';
}

export type WorkerCmd = ConnectCmd | PublishCmd | { cmd: 'mark' } | { cmd: 'report' } | { cmd: 'close' };

export interface ConnectDone {
  type: 'connected';
  ok: number;
  failed: number;
  errors: string[];
}

export interface PublishDone {
  type: 'published';
  published: number;
  /** Deliveries the publishes should cause. */
  expected: number;
  httpOk: number;
  httpFailed: number;
}

export interface WorkerReport {
  type: 'report';
  /** hdr-histogram compressed base64 of delivery latency (µs) since the last mark. */
  latency: string;
  /** HTTP request latency (µs), publisher worker in mode `http`, else empty. */
  httpLatency: string;
  received: number;
  gaps: number;
  reordered: number;
  unexpected: number;
  disconnects: number;
  errors: string[];
}

export type WorkerMsg = ConnectDone | PublishDone | WorkerReport | { type: 'closed' };

/** Shared between the generator's threads. */
export interface SharedState {
  /**
   * Float64 per worker: total deliveries received (single writer each); one more slot after them:
   * the total at which a waiting publisher wants to be woken.
   */
  received: SharedArrayBuffer;
  /** Int32 [0] wake-up counter, [1] 1 while the publisher waits for its window. */
  control: SharedArrayBuffer;
}
