import { Row, ScenarioResult } from '../scenarios/types';
import { SERVERS, ServerName } from '../lib/servers';
import type { BenchReport } from './types';

const isServer = (k: string): k is ServerName => k in SERVERS;
const label = (k: string): string => (isServer(k) ? SERVERS[k].label : k);

export function fmt(v: number | null | undefined, unit = ''): string {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  if (unit === 'ms') return v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : Math.round(v).toLocaleString('en-US');
  if (Number.isInteger(v) || Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US');
  return v.toFixed(2);
}

function ratio(a: number | null | undefined, b: number | null | undefined): string {
  if (a === null || a === undefined || b === null || b === undefined || b === 0 || Number.isNaN(a) || Number.isNaN(b)) return '—';
  return `${(a / b).toFixed(2)}×`;
}

/**
 * Ratio columns: each other column ÷ `base` when given, else wsgate ÷ each baseline server, plus the
 * Pusher door ÷ Soketi (the same protocol).
 */
function table(rows: Row[], base: string | undefined): string {
  const keys: string[] = [];
  for (const r of rows) for (const k of Object.keys(r.values)) if (!keys.includes(k)) keys.push(k);
  const pairs: [string, string][] =
    base !== undefined
      ? keys.filter((k) => k !== base).map((k) => [k, base])
      : [
          ...(keys.includes('wsgate') ? keys.filter((k) => k !== 'wsgate' && isServer(k)).map((k): [string, string] => ['wsgate', k]) : []),
          ...(keys.includes('pusher') && keys.includes('soketi') ? [['pusher', 'soketi'] as [string, string]] : []),
        ];
  const head = ['metric', ...keys.map(label), ...pairs.map(([a, b]) => `${label(a)} / ${label(b)}`)];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`];
  for (const r of rows) {
    const unit = r.unit && r.unit !== '/s' ? ` (${r.unit})` : '';
    const cells = [`${r.metric}${unit}`, ...keys.map((k) => fmt(r.values[k], r.unit)), ...pairs.map(([a, b]) => ratio(r.values[a], r.values[b]))];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

function scenarioSection(s: ScenarioResult): string {
  const params = Object.entries(s.params)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  const errors = Object.entries(s.servers)
    .filter(([, v]) => typeof v === 'object' && v !== null && 'error' in v)
    .map(([k, v]) => `- ${label(k)} failed: ${(v as { error: string }).error}`);
  return [`### ${s.title}`, '', `Parameters: ${params}`, '', s.rows.length ? table(s.rows, s.ratioBase) : '', '', ...s.notes.map((n) => `- ${n}`), ...errors, ''].join('\n');
}

export function renderMarkdown(r: BenchReport, svgName: string | null): string {
  const m = r.machine;
  const cap = r.generatorCapacity === null ? 'not measured in this run' : `${fmt(r.generatorCapacity)} msgs/s`;
  return [
    `## Benchmark results (${r.date.slice(0, 10)}, ${r.host}${r.quick ? ', quick mode: tiny sizes, not meaningful' : ''})`,
    '',
    `- Machine: ${m.cpu}, ${m.cores} cores, ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB RAM, ${m.kernel}, Node ${m.node}, open-files limit ${m.openFilesLimit}`,
    `- Pinning: ${r.pinning}`,
    `- Load generator: ${r.generatorThreads} worker threads; **receive capacity ${cap}** (self-test against a server that only blasts pre-framed messages: results near it are generator-bound)`,
    `- Servers: ${r.servers.map(label).join(', ')}; ratios are wsgate ÷ baseline, and the Pusher door ÷ Soketi (for time and bytes lower is better, for rates higher is better)`,
    `- Command: \`${r.command}\` (${r.durationSeconds} s)`,
    ...r.notes.map((n) => `- ${n}`),
    '',
    ...r.scenarios.map(scenarioSection),
    svgName ? `![chart](${svgName})\n` : '',
  ].join('\n');
}
