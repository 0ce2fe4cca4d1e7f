/**
 * A histogram observed on the hot path with no allocation: fixed bounds and a Float64Array of counts.
 * prom-client's Histogram hashes labels and allocates per observe; this is read only at scrape time.
 */
export class FixedHistogram {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > (b[i] as number)) i++;
    if (i < b.length) this.counts[i]! += 1;
    this.sum += v;
    this.count++;
  }

  /** Cumulative counts per bound, as Prometheus `le` buckets expect. */
  cumulative(): number[] {
    let acc = 0;
    return Array.from(this.counts, (c) => (acc += c));
  }
}

/** Seconds, from 10 µs to 2.5 s: fan-out is µs-scale, broker round trips ms-scale. */
export const LATENCY_BOUNDS = [1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
