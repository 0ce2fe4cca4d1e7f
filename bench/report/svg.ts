/** Latency-vs-throughput chart (log–log) as a self-contained SVG, written by hand (no dependencies). */
export interface Series {
  name: string;
  color: string;
  /** [deliveries/s, p99 ms, offered load beyond 80 % of the generator capacity] */
  points: [number, number, boolean][];
}

const W = 760;
const H = 460;
const M = { left: 70, right: 170, top: 40, bottom: 56 };

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

function decades(lo: number, hi: number): [number, number] {
  const a = Math.floor(Math.log10(Math.max(lo, 1e-9)));
  const b = Math.ceil(Math.log10(Math.max(hi, lo * 10)));
  return [a, b === a ? a + 1 : b];
}

function tickLabel(exp: number, unit: string): string {
  const v = 10 ** exp;
  if (unit === 'ms') return v >= 1 ? `${v} ms` : `${v.toFixed(-exp)} ms`;
  return v >= 1e6 ? `${v / 1e6}M` : v >= 1e3 ? `${v / 1e3}k` : String(v);
}

export function latencyChart(title: string, series: Series[], limitMs: number): string {
  const all = series.flatMap((s) => s.points).filter(([x, y]) => x > 0 && y > 0);
  const r1 = (v: number): string => v.toFixed(1);
  if (all.length === 0) return '';
  const [x0, x1] = decades(Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0])));
  const [y0, y1] = decades(Math.min(...all.map((p) => p[1]), limitMs), Math.max(...all.map((p) => p[1]), limitMs));
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const sx = (x: number): number => M.left + ((Math.log10(x) - x0) / (x1 - x0)) * pw;
  const sy = (y: number): number => M.top + ph - ((Math.log10(y) - y0) / (y1 - y0)) * ph;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2 - M.right / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`,
  ];
  for (let e = x0; e <= x1; e++) {
    const x = r1(sx(10 ** e));
    out.push(`<line x1="${x}" y1="${M.top}" x2="${x}" y2="${M.top + ph}" stroke="#ddd"/>`);
    out.push(`<text x="${x}" y="${M.top + ph + 18}" text-anchor="middle">${tickLabel(e, '')}</text>`);
  }
  for (let e = y0; e <= y1; e++) {
    const y = sy(10 ** e);
    out.push(`<line x1="${M.left}" y1="${r1(y)}" x2="${M.left + pw}" y2="${r1(y)}" stroke="#ddd"/>`);
    out.push(`<text x="${M.left - 6}" y="${r1(y + 4)}" text-anchor="end">${tickLabel(e, 'ms')}</text>`);
  }
  const ly = r1(sy(limitMs));
  out.push(`<line x1="${M.left}" y1="${ly}" x2="${M.left + pw}" y2="${ly}" stroke="#c00" stroke-dasharray="5,4"/>`);
  out.push(`<text x="${M.left + pw - 4}" y="${r1(sy(limitMs) - 5)}" text-anchor="end" fill="#c00">p99 target ${limitMs} ms</text>`);
  out.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${M.left + pw / 2}" y="${H - 14}" text-anchor="middle">delivered messages per second (log)</text>`);
  out.push(`<text transform="translate(18 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">p99 latency (log)</text>`);
  const ny = M.top + 14 + series.length * 20 + 10;
  out.push(`<circle cx="${M.left + pw + 27}" cy="${ny - 4}" r="3.5" fill="white" stroke="#333" stroke-width="1.5"/>`);
  out.push(`<text x="${M.left + pw + 44}" y="${ny}">generator-bound</text>`);
  series.forEach((s, i) => {
    const pts = s.points.filter(([x, y]) => x > 0 && y > 0);
    if (pts.length > 0) {
      out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"/>`);
      for (const [x, y, bound] of pts) {
        const fill = bound ? `fill="white" stroke="${s.color}" stroke-width="1.5"` : `fill="${s.color}"`;
        out.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3.5" ${fill}/>`);
      }
    }
    const lx = M.left + pw + 16;
    const lyy = M.top + 14 + i * 20;
    out.push(`<line x1="${lx}" y1="${lyy - 4}" x2="${lx + 22}" y2="${lyy - 4}" stroke="${s.color}" stroke-width="3"/>`);
    out.push(`<text x="${lx + 28}" y="${lyy}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}
