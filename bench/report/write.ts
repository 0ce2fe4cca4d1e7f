import * as fs from 'node:fs';
import * as path from 'node:path';
import { ScenarioResult } from '../scenarios/types';
import { ServerName } from '../lib/servers';

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

/** Writes `<date>-<host>.json` (atomically, via a .tmp file); returns the paths written. */
export function writeReport(dir: string, report: BenchReport): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const base = path.join(dir, `${report.date.slice(0, 10)}-${report.host}${report.quick ? '-quick' : ''}`);
  const json = `${base}.json`;
  fs.writeFileSync(`${json}.tmp`, JSON.stringify(report, null, 2));
  fs.renameSync(`${json}.tmp`, json);
  return [json];
}
