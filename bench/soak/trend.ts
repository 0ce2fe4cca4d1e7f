/** What the soak samples every 10 s, and how it judges the trend. */
export interface SoakSample {
  /** Seconds since the load started. */
  t: number;
  rssBytes: number;
  heapUsedBytes: number;
  externalBytes: number;
  /** Event-loop delay over the sample's window (prom-client resets its histogram at every scrape). */
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  /** Server CPU over the window, % of one core. */
  cpuPercent: number;
  connections: number;
  publishes: number;
  heapAllocatedBytesPerPublish: number;
  heapMeterCollections: number;
}

export interface SeriesTrend {
  /** Least-squares slope over the last two thirds (past start-up), MB per minute. */
  slopeMBPerMin: number;
  /** Slope over the last third only, MB per minute. */
  lastThirdSlopeMBPerMin: number;
  firstMB: number;
  middleThirdMeanMB: number;
  lastThirdMeanMB: number;
  /** (last third mean − middle third mean) ÷ middle third mean, %. */
  changePercent: number;
  /** Lowest and highest sample of each third: with a GC sawtooth, rising troughs show a leak that the means may hide or fake. */
  middleThirdRangeMB: [number, number];
  lastThirdRangeMB: [number, number];
  pass: boolean;
}

export interface SoakTrend {
  rss: SeriesTrend;
  heap: SeriesTrend;
  /** The pass line: RSS and heap in the last third within ±PASS_PERCENT of the middle third. */
  pass: boolean;
  loopDelayP99MsMax: number;
  loopDelayMaxMs: number;
  /** heap bytes per publish: mean of the middle third and of the last third (drift with uptime). */
  bytesPerPublishMiddle: number;
  bytesPerPublishLast: number;
}

export const PASS_PERCENT = 5;
const MB = 1024 * 1024;

function mean(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((s, x) => s + x, 0) / xs.length;
}

/** Least-squares slope of y over x. */
export function slope(xs: readonly number[], ys: readonly number[]): number {
  const mx = mean(xs);
  const my = mean(ys);
  let num = 0;
  let den = 0;
  for (let i = 0; i < xs.length; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

const round = (v: number, digits = 2): number => Math.round(v * 10 ** digits) / 10 ** digits;

const range = (xs: readonly number[]): [number, number] => [round(Math.min(...xs) / MB), round(Math.max(...xs) / MB)];

function seriesTrend(samples: readonly SoakSample[], pick: (s: SoakSample) => number, end: number): SeriesTrend {
  const middle = samples.filter((s) => s.t >= end / 3 && s.t < (2 * end) / 3);
  const last = samples.filter((s) => s.t >= (2 * end) / 3);
  const m = mean(middle.map(pick));
  const l = mean(last.map(pick));
  const change = ((l - m) / m) * 100;
  return {
    slopeMBPerMin: round(slope([...middle, ...last].map((s) => s.t / 60), [...middle, ...last].map((s) => pick(s) / MB)), 3),
    lastThirdSlopeMBPerMin: round(slope(last.map((s) => s.t / 60), last.map((s) => pick(s) / MB)), 3),
    firstMB: round(pick(samples[0]) / MB),
    middleThirdMeanMB: round(m / MB),
    lastThirdMeanMB: round(l / MB),
    changePercent: round(change),
    middleThirdRangeMB: range(middle.map(pick)),
    lastThirdRangeMB: range(last.map(pick)),
    pass: Number.isFinite(change) && Math.abs(change) <= PASS_PERCENT,
  };
}

export function soakTrend(samples: readonly SoakSample[]): SoakTrend {
  if (samples.length < 3) throw new Error(`only ${samples.length} samples: the soak needs at least three`);
  const end = samples[samples.length - 1].t;
  const rss = seriesTrend(samples, (s) => s.rssBytes, end);
  const heap = seriesTrend(samples, (s) => s.heapUsedBytes, end);
  const perPublish = (from: number, to: number): number =>
    Math.round(mean(samples.filter((s) => s.t >= from && s.t < to && s.heapAllocatedBytesPerPublish > 0).map((s) => s.heapAllocatedBytesPerPublish)));
  return {
    rss,
    heap,
    pass: rss.pass && heap.pass,
    loopDelayP99MsMax: round(Math.max(...samples.map((s) => s.loopDelayP99Ms))),
    loopDelayMaxMs: round(Math.max(...samples.map((s) => s.loopDelayMaxMs))),
    bytesPerPublishMiddle: perPublish(end / 3, (2 * end) / 3),
    bytesPerPublishLast: perPublish((2 * end) / 3, Infinity),
  };
}
