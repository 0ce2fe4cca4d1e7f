import { GCProfiler, getHeapStatistics, setFlagsFromString, type HeapInfo } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** How the meter measures: V8's own allocation counter, or GC statistics from `GCProfiler`. */
export type AllocationMethod = 'v8-counter' | 'gc-profiler';

/** Recent Node (25.x and later; not 20) exports V8's count of bytes allocated since the isolate started. */
function v8AllocatedBytes(): number | undefined {
  return (getHeapStatistics() as HeapInfo & { total_allocated_bytes?: number }).total_allocated_bytes;
}

/**
 * GC records that stopped, not yet collected profilers may hold before the meter asks for a full GC:
 * each keeps its output and appends one record per GC until a full GC collects it.
 */
const STALE_RECORD_BUDGET = 256; // about 1.3 MB at the ~5 KB a record takes on Node 20

/**
 * An ArrayBuffer this large (never touched, so it costs address space, not RSS) takes V8's external
 * memory past its soft limit, 64 MiB over the figure at the last full GC, and V8 answers with an
 * incremental full GC: a few ms of pause, where a forced `gc()` stops the world for the whole marking.
 */
const NUDGE_BYTES = 80 * 1024 * 1024;

/** A full GC on demand without `--expose-gc` on the command line: the flag only puts `gc` into contexts created while it is set. */
function fullGcFunction(): () => void {
  setFlagsFromString('--expose-gc');
  try {
    return runInNewContext('gc') as () => void;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}

/**
 * Counts JS heap bytes allocated by the process, measured rather than estimated.
 *
 * Where V8 exports its own counter, the meter reads it. Elsewhere (Node 20): between two samples,
 * allocated = growth of used heap + bytes every GC in between freed, from V8's `GCProfiler` (used heap
 * before and after each GC), restarted at every sample. Node keeps a stopped profiler's GC hooks
 * registered until a full GC collects its JS wrapper, and each hook appends a ~5 KB JSON record per GC
 * (minor ones too) to a buffer nobody reads; a server whose heap stays flat can run for hours without a
 * full GC, so that native memory grew with the square of uptime. The meter therefore counts those
 * records and, past STALE_RECORD_BUDGET, gets V8 to run an incremental full GC, which frees every
 * stopped profiler; if none has come by four times the budget, it forces one.
 */
export class HeapAllocationMeter {
  readonly method: AllocationMethod;
  /** Full GCs the meter asked V8 for to free stopped profilers: incremental ones, and forced ones if those did not come. */
  readonly collections = { incremental: 0, forced: 0 };
  private readonly base: number;
  private readonly profiler: GCProfiler | null;
  private lastUsed = 0;
  private total = 0;
  private stopped = 0;
  private staleRecords = 0;
  private nudged = false;
  private fullGc: (() => void) | null = null;

  constructor() {
    const counted = v8AllocatedBytes();
    this.method = counted === undefined ? 'gc-profiler' : 'v8-counter';
    this.base = counted ?? 0;
    this.profiler = counted === undefined ? new GCProfiler() : null;
    this.profiler?.start();
    this.lastUsed = getHeapStatistics().used_heap_size;
  }

  /** Total bytes allocated since construction, up to now. */
  sample(): number {
    if (this.profiler === null) return (v8AllocatedBytes() ?? this.base) - this.base;
    const { statistics } = this.profiler.stop();
    this.profiler.start();
    const used = getHeapStatistics().used_heap_size;
    let freed = 0;
    let full = false;
    for (const gc of statistics) {
      freed += gc.beforeGC.heapStatistics.usedHeapSize - gc.afterGC.heapStatistics.usedHeapSize;
      if (gc.gcType === 'MarkSweepCompact') full = true;
    }
    this.total += Math.max(0, used - this.lastUsed + freed);
    this.lastUsed = used;
    this.countStale(statistics.length, full);
    return this.total;
  }

  /**
   * `gcs` GCs happened while the profiler just stopped ran: it holds their records, and every profiler
   * stopped earlier got one each, unless one of them was a full GC, which collected those.
   */
  private countStale(gcs: number, full: boolean): void {
    if (full) {
      this.stopped = 0;
      this.staleRecords = 0;
      this.nudged = false;
    } else {
      this.staleRecords += this.stopped * gcs;
    }
    this.stopped += 1;
    this.staleRecords += gcs;
    // The running profiler records the GC asked for here, so the next sample counts what it freed.
    if (this.staleRecords > 4 * STALE_RECORD_BUDGET) {
      this.fullGc ??= fullGcFunction();
      this.fullGc();
      this.collections.forced += 1;
      this.stopped = 0;
      this.staleRecords = 0;
      this.nudged = false;
    } else if (this.staleRecords > STALE_RECORD_BUDGET && !this.nudged) {
      this.nudged = true;
      try {
        void new ArrayBuffer(NUDGE_BYTES);
        this.collections.incremental += 1;
      } catch {
        // No address space for it (ulimit -v): the forced GC at four times the budget remains.
      }
    }
  }

  stop(): void {
    this.profiler?.stop();
  }
}

/**
 * Heap bytes allocated per publish over fixed windows, from the meter and the publish count. Bytes the
 * caller reports with `exclude` (rendering /metrics: ~1 MB per scrape, whatever the traffic) are left
 * out, so the figure does not rise as publishes get fewer per scrape.
 */
export class AllocationPerPublish {
  private lastBytes: number;
  private lastPublishes: number;
  private excluded = 0;
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
    this.value = n > 0 ? Math.max(0, bytes - this.lastBytes - this.excluded) / n : 0;
    this.lastBytes = bytes;
    this.lastPublishes = pubs;
    this.excluded = 0;
  }

  /** Leaves `bytes`, allocated by work that is not publishing, out of the current window. */
  exclude(bytes: number): void {
    this.excluded += bytes;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
