import { ServerName } from '../lib/servers';

export interface BenchOptions {
  quick: boolean;
  servers: ServerName[];
  /** Generator worker threads. */
  threads: number;
  /** Max-rate runs: deliveries per subscriber allowed in flight. */
  window: number;
  /** Idle-connection count requested (clamped to the open-files limit). */
  idleConns: number;
  /** Soak: which load (`--profile`), and `--duration` in seconds (null: the profile's default). */
  soakProfile: 'steady' | 'churn';
  durationSeconds: number | null;
}

/** One line of a results table: a metric measured on each server. */
export interface Row {
  metric: string;
  unit: string;
  better: 'higher' | 'lower';
  /** Keyed by server (or by variant for in-process benchmarks). */
  values: Record<string, number | null>;
}

export interface ScenarioResult {
  name: string;
  title: string;
  params: Record<string, number | string | boolean>;
  /** Raw measurements per server, per variant (e.g. crossnode's brokers) or of the generator (or `{ error }`). */
  servers: Partial<Record<ServerName | 'generator' | (string & {}), unknown>>;
  rows: Row[];
  notes: string[];
  /** Ratio columns are each other column ÷ this one (default: wsgate ÷ each baseline server). */
  ratioBase?: string;
}

export interface Context {
  opts: BenchOptions;
  /** Generator receive capacity (deliveries/s) from the self-test, when it ran. */
  generatorCapacity: number | null;
  log(msg: string): void;
}

export interface Scenario {
  name: string;
  title: string;
  /** Part of the default suite (the others run only with --scenario). */
  inDefault: boolean;
  run(ctx: Context): Promise<ScenarioResult>;
}
