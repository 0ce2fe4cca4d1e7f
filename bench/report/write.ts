import * as fs from 'node:fs';
import * as path from 'node:path';
import { SERVERS, ServerName } from '../lib/servers';
import type { BenchReport } from './types';
import type { LatencyOutcome } from '../scenarios/latency';
import { renderMarkdown } from './markdown';
import { Series, latencyChart } from './svg';
import { soakChart } from './soak-svg';


const COLORS: Record<ServerName, string> = { wsgate: '#1f77b4', pusher: '#17becf', uws: '#2ca02c', ws: '#ff7f0e', socketio: '#9467bd', soketi: '#d62728' };

/** Sweep points of the latency scenario: measured deliveries/s against p99. */
function chart(report: BenchReport): string {
  const lat = report.scenarios.find((s) => s.name === 'latency');
  if (!lat) return '';
  const series: Series[] = [];
  for (const [name, outcome] of Object.entries(lat.servers) as [ServerName, LatencyOutcome | { error: string }][]) {
    if ('error' in outcome) continue;
    series.push({ name: SERVERS[name].label, color: COLORS[name], points: outcome.sweep.map((p) => [p.deliveriesPerSec, p.p99, p.generatorBound]) });
  }
  return latencyChart('p99 latency vs throughput (1 topic, 1,000 subscribers, open loop)', series, 50);
}

function writeAtomic(file: string, text: string): void {
  fs.writeFileSync(`${file}.tmp`, text);
  fs.renameSync(`${file}.tmp`, file);
}

/** Writes `<date>-<host><suffix>.json`, `.md` and `.svg` (the chart only when the latency or soak scenario ran). */
export function writeReport(dir: string, suffix: string, report: BenchReport): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const base = path.join(dir, `${report.date.slice(0, 10)}-${report.host}${suffix}${report.quick ? '-quick' : ''}`);
  const written = [`${base}.json`, `${base}.md`];
  writeAtomic(`${base}.json`, JSON.stringify(report, null, 2) + '\n');
  const svg = chart(report) || soakChart(report);
  if (svg !== '') {
    writeAtomic(`${base}.svg`, svg + '\n');
    written.push(`${base}.svg`);
  }
  writeAtomic(`${base}.md`, renderMarkdown(report, svg !== '' ? path.basename(`${base}.svg`) : null));
  return written;
}
