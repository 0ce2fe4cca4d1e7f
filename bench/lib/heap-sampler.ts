/**
 * Preloaded (`node -r`) into a server whose allocation a scenario counts: SIGWINCH starts V8's sampling
 * heap profiler, including objects later collected (so it counts what was allocated, not what
 * survived); the next SIGWINCH stops it and writes SAMPLE_MARK with the bytes it saw on stderr.
 *
 * Why beside the gateway's own meter: the meter counts all the heap grew by, compiled code included, so
 * a window in which V8 optimizes or deoptimizes the publish path reads high (a fresh server at 1,000
 * subscribers read 560–650 B per publish in its first 15 s, where this profiler saw 219–229 B in the
 * same windows), and on Node 20 it is GC statistics, noisy where a window holds few GCs. The profiler
 * counts allocations (not code) stack by stack; once the path is compiled the two agree within noise.
 */
import { Session } from 'node:inspector';
import { SAMPLE_MARK } from './procs';

/** Mean bytes between samples: small against a publish's ~200 B, so a window of thousands is exact to ~1 %. */
const INTERVAL = 128;

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
    session.post('HeapProfiler.startSampling', { samplingInterval: INTERVAL, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    return;
  }
  sampling = false;
  session.post('HeapProfiler.stopSampling', (err, res) => {
    const bytes = err ? -1 : total((res as { profile: { head: ProfileNode } }).profile.head);
    process.stderr.write(`\n${SAMPLE_MARK} ${++reports} ${Math.round(bytes)}\n`);
  });
});
