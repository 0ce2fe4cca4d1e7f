import * as hdr from 'hdr-histogram-js';

/** Latencies are recorded in microseconds, clamped to [1 µs, 2 min]. */
const MAX_LATENCY_US = 120_000_000;

export function newHistogram(): hdr.Histogram {
  return hdr.build({
    bitBucketSize: 32,
    autoResize: false,
    lowestDiscernibleValue: 1,
    highestTrackableValue: MAX_LATENCY_US,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
}

/** Exact 1 µs buckets below this (262 ms); 1 MiB of counters per recorder. */
const FAST_RANGE = 1 << 18;

/**
 * Per-sample recording at millions of samples per second: hdr-histogram-js computes bucket indexes
 * with Math.log2/Math.pow, which costs more than everything else the generator does per message.
 * Samples under 262 ms go into a flat array of exact 1 µs counters (one increment, no allocation)
 * and are folded into the hdr histogram when the report is built; slower samples go straight in.
 */
export class LatencyRecorder {
  private readonly fast = new Uint32Array(FAST_RANGE);
  private readonly slow = newHistogram();

  record(us: number): void {
    if (us < FAST_RANGE) this.fast[us < 1 ? 1 : us | 0]++;
    else this.slow.recordValue(us > MAX_LATENCY_US ? MAX_LATENCY_US : Math.round(us));
  }

  get count(): number {
    let n = this.slow.totalCount;
    for (let i = 0; i < FAST_RANGE; i++) n += this.fast[i];
    return n;
  }

  reset(): void {
    this.fast.fill(0);
    this.slow.reset();
  }

  /** hdr-histogram compressed base64 of everything recorded since the last reset. */
  encode(): string {
    const h = newHistogram();
    h.add(this.slow);
    for (let i = 1; i < FAST_RANGE; i++) if (this.fast[i] !== 0) h.recordValueWithCount(i, this.fast[i]);
    return hdr.encodeIntoCompressedBase64(h);
  }
}

export function mergeHistograms(encoded: readonly string[]): hdr.Histogram {
  const total = newHistogram();
  for (const e of encoded) if (e !== '') total.add(hdr.decodeFromCompressedBase64(e, 32, false));
  return total;
}

/** Latency summary in milliseconds. */
export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

const ms = (us: number): number => Math.round(us) / 1000;

export function summarize(h: hdr.Histogram): LatencySummary {
  const n = h.totalCount;
  return {
    count: n,
    p50: n ? ms(h.getValueAtPercentile(50)) : 0,
    p90: n ? ms(h.getValueAtPercentile(90)) : 0,
    p99: n ? ms(h.getValueAtPercentile(99)) : 0,
    p999: n ? ms(h.getValueAtPercentile(99.9)) : 0,
    max: n ? ms(h.maxValue) : 0,
    mean: n ? ms(h.mean) : 0,
  };
}
