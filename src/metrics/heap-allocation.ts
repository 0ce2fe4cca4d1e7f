import { GCProfiler, getHeapStatistics } from 'node:v8';

/**
 * Counts JS heap bytes allocated by the process, measured rather than estimated: between two samples,
 * allocated = growth of used heap + bytes every GC in between freed. V8's GCProfiler reports used heap
 * before and after each GC; it is restarted at every sample so its record stays short.
 */
export class HeapAllocationMeter {
  private readonly profiler = new GCProfiler();
  private lastUsed: number;
  private total = 0;

  constructor() {
    this.profiler.start();
    this.lastUsed = getHeapStatistics().used_heap_size;
  }

  /** Total bytes allocated since construction, up to now. */
  sample(): number {
    const { statistics } = this.profiler.stop();
    this.profiler.start();
    const used = getHeapStatistics().used_heap_size;
    let freed = 0;
    for (const gc of statistics) freed += gc.beforeGC.heapStatistics.usedHeapSize - gc.afterGC.heapStatistics.usedHeapSize;
    this.total += Math.max(0, used - this.lastUsed + freed);
    this.lastUsed = used;
    return this.total;
  }

  stop(): void {
    this.profiler.stop();
  }
}

/** Heap bytes allocated per publish over fixed windows, from the meter and the publish count. */
export class AllocationPerPublish {
  private lastBytes: number;
  private lastPublishes: number;
  value = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly meter: HeapAllocationMeter,
    private readonly publishes: () => number,
    windowMs: number,
  ) {
    this.lastBytes = meter.sample();
    this.lastPublishes = publishes();
    this.timer = setInterval(() => this.tick(), windowMs).unref();
  }

  private tick(): void {
    const bytes = this.meter.sample();
    const pubs = this.publishes();
    const n = pubs - this.lastPublishes;
    this.value = n > 0 ? (bytes - this.lastBytes) / n : 0;
    this.lastBytes = bytes;
    this.lastPublishes = pubs;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
