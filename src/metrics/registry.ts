import { readdirSync, statSync } from 'node:fs';
import { Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import type { FixedHistogram } from './histogram';

type MetricType = 'counter' | 'gauge' | 'histogram';
interface Sample {
  value: number;
  labels?: Record<string, string | number>;
  metricName?: string;
}

/**
 * A metric whose samples are read from plain numbers at scrape time. prom-client accepts any object
 * with name/help/type/get(); this keeps the hot path free of prom-client calls.
 */
class ScrapedMetric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricType,
    private readonly read: () => Sample[],
  ) {}

  get() {
    return { name: this.name, help: this.help, type: this.type, values: this.read(), aggregator: 'sum' as const };
  }
}

function histogramSamples(name: string, h: FixedHistogram, labels: Record<string, string>): Sample[] {
  const cumulative = h.cumulative();
  const samples: Sample[] = h.bounds.map((le, i) => ({ metricName: `${name}_bucket`, labels: { ...labels, le }, value: cumulative[i] as number }));
  samples.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: h.count });
  samples.push({ metricName: `${name}_sum`, labels, value: h.sum });
  samples.push({ metricName: `${name}_count`, labels, value: h.count });
  return samples;
}

/** Open file descriptors of this process (Linux): the size of /proc/self/fd, else its entries. */
function openFileDescriptors(): number {
  try {
    const size = statSync('/proc/self/fd').size;
    // readdirSync's own descriptor is closed again by the time it returns, but listed.
    return size > 0 ? size : readdirSync('/proc/self/fd').length - 1;
  } catch {
    return 0;
  }
}

/** Builds the registry the /metrics route serves. */
export class MetricsRegistry {
  readonly registry = new Registry();

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    // prom-client names these gauges with _total, which promtool's linter rejects (a _total suffix is
    // for counters). They are the sums of nodejs_active_{handles,requests,resources}{type}, also exported.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name);
    // prom-client lists /proc/self/fd to count descriptors: a string per descriptor, so every scrape of a
    // node with 10,000 connections allocated ~650 KB for this one gauge. Linux 6.2+ gives the count as
    // the directory's size; older kernels report 0 there, and then it is listed as before.
    if (this.registry.getSingleMetric('process_open_fds') !== undefined) {
      this.registry.removeSingleMetric('process_open_fds');
      this.gauge('process_open_fds', 'Number of open file descriptors.', openFileDescriptors);
    }
  }

  private add(name: string, help: string, type: MetricType, read: () => Sample[]): void {
    this.registry.registerMetric(new ScrapedMetric(name, help, type, read) as unknown as Metric);
  }

  counter(name: string, help: string, read: () => number): void {
    this.add(name, help, 'counter', () => [{ value: read() }]);
  }

  gauge(name: string, help: string, read: () => number): void {
    this.add(name, help, 'gauge', () => [{ value: read() }]);
  }

  /** One sample per label value; `values` is read at scrape time. */
  labeled(name: string, help: string, type: MetricType, label: string, values: () => Iterable<[string, number]>): void {
    this.add(name, help, type, () => Array.from(values(), ([l, value]) => ({ value, labels: { [label]: l } })));
  }

  /** Counters over several labels, as one sample per label combination read at scrape time. */
  labeledCounters(name: string, help: string, read: () => { value: number; labels: Record<string, string> }[]): void {
    this.add(name, help, 'counter', read);
  }

  histogram(name: string, help: string, h: FixedHistogram): void {
    this.add(name, help, 'histogram', () => histogramSamples(name, h, {}));
  }

  /** One histogram per label value (a closed set, given up front). */
  labeledHistograms(name: string, help: string, label: string, histograms: readonly [string, FixedHistogram][]): void {
    this.add(name, help, 'histogram', () => histograms.flatMap(([l, h]) => histogramSamples(name, h, { [label]: l })));
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
