/**
 * Preloaded (`node -r dist/bench/lib/heap-sampler.js`) into a server whose allocation is counted: SIGWINCH
 * starts V8's sampling heap profiler, including objects later collected (so it counts what was
 * allocated, not what survived); the next SIGWINCH stops it, writes SAMPLE_MARK with the bytes it saw on
 * stderr and, with HEAPSAMPLE_OUT set, the profile there (a .heapprofile for Chrome DevTools, or
 * `node dist/bench/tools/heap-top.js <file>`). HS_INTERVAL: mean bytes between samples (default 128:
 * small against a publish's ~200 B, so a window of thousands of publishes is exact to ~1 %). The alloc
 * scenario and the probes in bench/tools send the signals.
 *
 * Why beside the gateway's own meter: the meter counts all the heap grew by, compiled code included, so
 * a window in which V8 optimizes or deoptimizes the publish path reads high (a fresh server at 1,000
 * subscribers read 560–650 B per publish in its first 15 s, where this profiler saw 219–229 B in the
 * same windows), and on Node 20 it is GC statistics, noisy where a window holds few GCs. The profiler
 * counts allocations (not code) stack by stack; once the path is compiled the two agree within noise.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { SAMPLE_MARK } from './procs';

interface ProfileNode {
  selfSize: number;
  children: ProfileNode[];
}

const total = (n: ProfileNode): number => n.children.reduce((sum, c) => sum + total(c), n.selfSize);

let session: Session | null = null;
let sampling = false;
let reports = 0;

process.on('SIGWINCH', () => {
  if (session === null) {
    session = new Session();
    session.connect();
  }
  if (!sampling) {
    sampling = true;
    const samplingInterval = Number(process.env.HS_INTERVAL ?? 128);
    session.post('HeapProfiler.startSampling', { samplingInterval, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    return;
  }
  sampling = false;
  session.post('HeapProfiler.stopSampling', (err, res) => {
    if (err !== null) process.stderr.write(`heap-sampler: ${err.message}\n`);
    const profile = err === null ? (res as { profile: { head: ProfileNode } }).profile : null;
    if (profile !== null && process.env.HEAPSAMPLE_OUT !== undefined) writeFileSync(process.env.HEAPSAMPLE_OUT, JSON.stringify(profile));
    process.stderr.write(`\n${SAMPLE_MARK} ${++reports} ${profile === null ? -1 : Math.round(total(profile.head))}\n`);
  });
});
