import type { Config } from '../config/schema';
import type { GuardMemory } from '../guard/upgrade-guard';
import type { ProcessTablesMemory } from '../shared/process-tables';
import type { MeshMemory } from './mesh';

/** What a worker thread starts with (workerData). */
export interface WorkerBoot {
  readonly config: Config;
  readonly index: number;
  /** Counts this index's incarnations: a replaced worker is a new node. */
  readonly generation: number;
  readonly mesh: MeshMemory;
  /** The guardrails' process-wide counts (connection limit, per-address table). */
  readonly guard: GuardMemory;
  /** The tables the workers share with the memory broker. */
  readonly tables: ProcessTablesMemory;
  /** The process's control channel (BroadcastChannel name). */
  readonly channel: string;
}

/** prom-client's JSON form of one metric (getMetricsAsJSON). */
export interface MetricJson {
  name: string;
  help: string;
  type: string;
  aggregator: string;
  values: { value: number; labels: Record<string, string | number>; metricName?: string }[];
}

export type FromWorker =
  | { type: 'ready'; app: number; admin: number | null }
  /** Asks for the whole process's /metrics text. */
  | { type: 'scrape'; id: number }
  /** Answers `collect`: this worker's metrics. */
  | { type: 'collected'; id: number; metrics: MetricJson[] }
  /** An uncaught error: take my apps out of the acceptors before I close them. */
  | { type: 'dying' }
  | { type: 'drained' };

export type ToWorker =
  | { type: 'drain' }
  /** Close at once (no drain window): the supervisor is closed, e.g. by a test. */
  | { type: 'close' }
  | { type: 'peer'; index: number; out: SharedArrayBuffer; inbound: SharedArrayBuffer; bell: SharedArrayBuffer }
  | { type: 'collect'; id: number }
  | { type: 'scraped'; id: number; text: string; ok: boolean }
  | { type: 'released' }
  /** Fault injection (tests): throw an uncaught error in the worker, as a bug would. */
  | { type: 'fail' };
