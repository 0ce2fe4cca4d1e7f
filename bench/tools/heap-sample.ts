/**
 * Preload (`node -r dist/bench/tools/heap-sample.js`): SIGWINCH starts V8's sampling heap profiler with
 * garbage included (objects collected by minor and major GCs are kept in the profile, so it shows what
 * was allocated, not what survived); the next SIGWINCH stops it and writes HEAPSAMPLE_OUT (a
 * .heapprofile for Chrome DevTools, or `node dist/bench/tools/heap-top.js <file>`). HS_INTERVAL: mean
 * bytes between samples (default 256). The probes in this folder send the signals.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

let session: Session | null = null;
let sampling = false;

process.on('SIGWINCH', () => {
  if (session === null) {
    session = new Session();
    session.connect();
  }
  const s = session;
  if (!sampling) {
    sampling = true;
    s.post('HeapProfiler.startSampling', {
      samplingInterval: Number(process.env.HS_INTERVAL ?? 256),
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    return;
  }
  sampling = false;
  s.post('HeapProfiler.stopSampling', (err, r) => {
    if (err !== null) return void process.stderr.write(`heap-sample: ${err.message}\n`);
    writeFileSync(process.env.HEAPSAMPLE_OUT ?? 'heap.heapprofile', JSON.stringify(r.profile));
  });
});
