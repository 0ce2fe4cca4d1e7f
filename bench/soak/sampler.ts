import { scrapeMetrics } from '../lib/metrics';
import { cpuSeconds, rssBytes } from '../lib/procs';
import { SoakSample } from './trend';

/** Samples a wsgate process every `intervalMs`: RSS and CPU from /proc, the rest from its /metrics. */
export class SoakSampler {
  readonly samples: SoakSample[] = [];
  readonly errors: string[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly t0 = performance.now();
  private lastCpu: number;
  private lastAt: number;

  constructor(
    private readonly pid: number,
    private readonly port: number,
    private readonly intervalMs: number,
    private readonly log: (msg: string) => void,
  ) {
    this.lastCpu = cpuSeconds(pid);
    this.lastAt = this.t0;
  }

  start(): void {
    void this.take();
    this.timer = setInterval(() => void this.take(), this.intervalMs);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private async take(): Promise<void> {
    const now = performance.now();
    try {
      const m = await scrapeMetrics(this.port);
      const cpu = cpuSeconds(this.pid);
      const get = (k: string): number => m.get(k) ?? NaN;
      const s: SoakSample = {
        t: Math.round((now - this.t0) / 100) / 10,
        rssBytes: rssBytes(this.pid),
        heapUsedBytes: get('nodejs_heap_size_used_bytes'),
        externalBytes: get('nodejs_external_memory_bytes'),
        loopDelayP99Ms: get('nodejs_eventloop_lag_p99_seconds') * 1000,
        loopDelayMaxMs: get('nodejs_eventloop_lag_max_seconds') * 1000,
        cpuPercent: now > this.lastAt ? Math.round(((cpu - this.lastCpu) / ((now - this.lastAt) / 1000)) * 100) : 0,
        connections: get('wsgate_connections'),
        publishes: get('wsgate_publishes_total'),
        heapAllocatedBytesPerPublish: Math.round(get('wsgate_heap_allocated_bytes_per_publish')),
        heapMeterCollections: get('wsgate_heap_meter_collections_total'),
      };
      this.lastCpu = cpu;
      this.lastAt = now;
      this.samples.push(s);
      const mb = (b: number): string => (b / 1048576).toFixed(1);
      this.log(`  t=${s.t}s rss ${mb(s.rssBytes)} MB heap ${mb(s.heapUsedBytes)} MB loop p99 ${s.loopDelayP99Ms.toFixed(1)} ms cpu ${s.cpuPercent}% conns ${s.connections} B/pub ${s.heapAllocatedBytesPerPublish}`);
    } catch (err) {
      this.errors.push(`t=${Math.round((now - this.t0) / 1000)}s: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}
