import type { ScenarioResult } from '../scenarios/types';
import type { ServerName } from '../lib/servers';

/** One bench run as written to results/*.json (read by the markdown and chart renderers). */
export interface BenchReport {
  version: 1;
  date: string;
  host: string;
  command: string;
  quick: boolean;
  machine: { cpu: string; cores: number; memoryBytes: number; kernel: string; node: string; openFilesLimit: number };
  pinning: string;
  generatorThreads: number;
  generatorCapacity: number | null;
  servers: ServerName[];
  notes: string[];
  durationSeconds: number;
  scenarios: ScenarioResult[];
}
