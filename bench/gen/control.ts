/** Messages between the orchestrator (bench/run.ts) and the generator process (gen/main.ts). */
import { PublishMode, PublishPlan, TargetSpec } from './messages';
import { LatencySummary } from '../lib/histogram';

export interface GenInit {
  cmd: 'init';
  target: TargetSpec;
  /** Worker threads: one publisher thread plus the rest for subscribers (1 = everything in one). */
  threads: number;
}

export interface GenConnect {
  cmd: 'connect';
  subs: number;
  numTopics: number;
  publishers: number;
  /** Size of each subscriber's per-publisher sequence table. */
  publisherIds: number;
  concurrency: number;
  timeoutMs: number;
  /** Subscriber i connects to subPorts[i % length] (nodes of a cluster); default: the target's port. */
  subPorts?: number[];
  /** Topics each subscriber holds via `?topics=` (default 1). */
  topicsPerConn?: number;
}

export interface GenRun extends PublishPlan {
  cmd: 'run';
  warmupMs: number;
  /** After publishing: wait for missing deliveries until this long passes without progress (max 30 s). */
  drainMs: number;
}

export type GenCmd = GenInit | GenConnect | GenRun | { cmd: 'close' };

export interface ConnectResult {
  ok: number;
  failed: number;
  seconds: number;
  perSecond: number;
  errors: string[];
}

export interface RunResult {
  mode: PublishMode;
  offeredRate: number;
  seconds: number;
  published: number;
  publishesPerSec: number;
  deliveriesPerSec: number;
  expected: number;
  received: number;
  lost: number;
  gaps: number;
  reordered: number;
  unexpected: number;
  disconnects: number;
  latencyMs: LatencySummary;
  httpLatencyMs: LatencySummary | null;
  httpOk: number;
  httpFailed: number;
  errors: string[];
}

export type GenReply =
  | { type: 'ready' }
  | { type: 'connected'; result: ConnectResult }
  | { type: 'ran'; result: RunResult }
  | { type: 'error'; message: string };
