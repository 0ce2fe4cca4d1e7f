/** The soak's chart: server RSS and JS heap against time, thirds marked, as a self-contained SVG. */
import type { SoakOutcome } from '../scenarios/soak';
import type { BenchReport } from './types';

const W = 760;
const H = 400;
const M = { left: 60, right: 150, top: 40, bottom: 50 };
const MB = 1024 * 1024;

export function soakChart(report: BenchReport): string {
  const s = report.scenarios.find((x) => x.name === 'soak');
  const o = s?.servers.wsgate as SoakOutcome | { error: string } | undefined;
  if (!s || !o || 'error' in o || o.samples.length < 2) return '';
  const series = [
    { name: 'RSS', color: '#1f77b4', points: o.samples.map((p) => [p.t / 60, p.rssBytes / MB] as const) },
    { name: 'JS heap used', color: '#ff7f0e', points: o.samples.map((p) => [p.t / 60, p.heapUsedBytes / MB] as const) },
  ];
  const tEnd = o.samples[o.samples.length - 1].t / 60;
  const yMax = Math.ceil(Math.max(...series.flatMap((x) => x.points.map((p) => p[1]))) / 20) * 20 || 20;
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const sx = (m: number): number => M.left + (m / tEnd) * pw;
  const sy = (mb: number): number => M.top + ph - (mb / yMax) * ph;
  const f = (v: number): string => v.toFixed(1);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${(W - M.right) / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">wsgate soak (${o.profile}): memory over time</text>`,
    `<rect x="${f(sx(tEnd / 3))}" y="${M.top}" width="${f(sx((2 * tEnd) / 3) - sx(tEnd / 3))}" height="${ph}" fill="#f3f3f3"/>`,
    `<rect x="${f(sx((2 * tEnd) / 3))}" y="${M.top}" width="${f(sx(tEnd) - sx((2 * tEnd) / 3))}" height="${ph}" fill="#e6efe6"/>`,
    `<text x="${f(sx(tEnd / 2))}" y="${M.top + 14}" text-anchor="middle" fill="#666">middle third</text>`,
    `<text x="${f(sx((5 * tEnd) / 6))}" y="${M.top + 14}" text-anchor="middle" fill="#666">last third</text>`,
  ];
  for (let y = 0; y <= yMax; y += yMax / 5) {
    out.push(`<line x1="${M.left}" y1="${f(sy(y))}" x2="${M.left + pw}" y2="${f(sy(y))}" stroke="#ddd"/>`);
    out.push(`<text x="${M.left - 6}" y="${f(sy(y) + 4)}" text-anchor="end">${Math.round(y)} MB</text>`);
  }
  const step = tEnd > 20 ? 5 : tEnd > 5 ? 1 : 0.5;
  for (let m = 0; m <= tEnd + 1e-9; m += step) out.push(`<text x="${f(sx(m))}" y="${M.top + ph + 18}" text-anchor="middle">${m}</text>`);
  out.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${M.left + pw / 2}" y="${H - 12}" text-anchor="middle">minutes under load</text>`);
  series.forEach((x, i) => {
    out.push(`<polyline fill="none" stroke="${x.color}" stroke-width="2" points="${x.points.map(([a, b]) => `${f(sx(a))},${f(sy(b))}`).join(' ')}"/>`);
    const ly = M.top + 14 + i * 20;
    out.push(`<line x1="${M.left + pw + 12}" y1="${ly - 4}" x2="${M.left + pw + 34}" y2="${ly - 4}" stroke="${x.color}" stroke-width="3"/>`);
    out.push(`<text x="${M.left + pw + 40}" y="${ly}">${x.name}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}
