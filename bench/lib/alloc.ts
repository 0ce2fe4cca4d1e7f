import * as v8 from 'node:v8';

/**
 * Starts measuring the JS heap bytes allocated from now, from V8's own GC statistics: the heap grows
 * only by allocation between collections, so allocated = Σ(used before GC i − used after GC i−1) plus
 * the growth since the last GC. The returned function stops and answers (it may span awaits).
 */
export function startAllocationMeter(): () => number {
  const profiler = new v8.GCProfiler();
  const start = v8.getHeapStatistics().used_heap_size;
  profiler.start();
  return () => {
    const end = v8.getHeapStatistics().used_heap_size;
    const stats = profiler.stop()?.statistics ?? [];
    let total = 0;
    let after = start;
    for (const s of stats) {
      total += Math.max(0, s.beforeGC.heapStatistics.usedHeapSize - after);
      after = s.afterGC.heapStatistics.usedHeapSize;
    }
    return total + Math.max(0, end - after);
  };
}

/** JS heap bytes allocated while `fn` runs (see startAllocationMeter). */
export function allocatedDuring(fn: () => void): number {
  const stop = startAllocationMeter();
  fn();
  return stop();
}

/** Runs `loop` once to warm up the JIT, then again measured: wall-clock ns and JS heap bytes it took. */
export function timeAndAllocation(loop: () => void): { ns: number; bytes: number } {
  loop();
  let ns = 0;
  const bytes = allocatedDuring(() => {
    const t0 = process.hrtime.bigint();
    loop();
    ns = Number(process.hrtime.bigint() - t0);
  });
  return { ns, bytes };
}
