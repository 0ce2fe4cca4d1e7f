/**
 * `node dist/bench/tools/alloc-probe.js <subscribers> [rate=0] [windowMs=5000] [heap]`: one wsgate server
 * (the bench's command, pinned as the bench pins it), `subscribers` on one topic and one publisher; socket
 * `pub`s closed loop (rate 0) or at `rate` per second for the window, then an idle window as long. Prints
 * JS heap bytes per publish by the gateway's own counter (publishing window − idle window) and the
 * gateway's per-publish gauge. With `heap`, the server runs with bench/lib/heap-sampler.ts and the publishing window
 * is profiled into HEAPSAMPLE_OUT. A fixed rate shows what the figure owes to the rate, not to subscribers.
 * PROBE_NODE_FLAGS: more node flags for the server, e.g. `--no-opt`, which keeps the publish path in the
 * unoptimized tiers as a few dozen publishes per second do (V8 optimizes it only after thousands).
 * PROBE_WARMUP_MS: publish (the same way) for this long and scrape twice before the measured window, so
 * what V8 allocates once to compile the publish and scrape paths (bytecode, feedback, code) falls outside it.
 */
import { scrapeMetrics } from '../lib/metrics';
import { SAMPLER_PRELOAD } from '../lib/procs';
import { probe, sleep } from './probe';

const HEAP = 'wsgate_heap_allocated_bytes_total';
const [subsArg, rateArg = '0', windowArg = '5000', heapArg] = process.argv.slice(2);
const subs = Number(subsArg);
const rate = Number(rateArg);
const windowMs = Number(windowArg);
const heap = heapArg === 'heap';

const warmupMs = Number(process.env.PROBE_WARMUP_MS ?? 0);
const extraFlags = (process.env.PROBE_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');

probe('wsgate', [...extraFlags, ...(heap ? ['-r', SAMPLER_PRELOAD] : [])], async (server, gen) => {
  const c = await gen.connect({ subs, numTopics: 1, publishers: 1, publisherIds: 1, concurrency: 256, timeoutMs: 120_000 });
  const run = (durationMs: number) =>
    gen.run({ mode: rate > 0 ? 'rate' : 'max', rate, warmupMs: 0, durationMs, drainMs: 2000, payloadBytes: 64, numTopics: 1, fanout: subs, windowPerSub: 32, totalSubs: subs, httpConnections: 0 });
  if (warmupMs > 0) {
    await run(warmupMs);
    await scrapeMetrics(server.port, 120_000);
    await scrapeMetrics(server.port);
  }
  await sleep(1500);
  const m1 = await scrapeMetrics(server.port);
  const t1 = performance.now();
  if (heap) process.kill(server.pid, 'SIGWINCH');
  const r = await run(windowMs);
  if (heap) process.kill(server.pid, 'SIGWINCH');
  const m2 = await scrapeMetrics(server.port, 120_000);
  await sleep(performance.now() - t1);
  const m3 = await scrapeMetrics(server.port);
  const get = (m: Map<string, number>, k: string): number => m.get(k) ?? NaN;
  const pubs = get(m2, 'wsgate_publishes_total') - get(m1, 'wsgate_publishes_total');
  const work = get(m2, HEAP) - get(m1, HEAP) - (get(m3, HEAP) - get(m2, HEAP));
  console.log(JSON.stringify({ subscribers: c.ok - 1, publishes: pubs, publishesPerSec: Math.round(pubs / (windowMs / 1000)), bytesPerPublish: Math.round(work / pubs), gauge: Math.round(get(m2, 'wsgate_heap_allocated_bytes_per_publish')), lost: r.lost }));
});
