import { scrapeMetrics } from '../lib/metrics';
import { SAMPLER_PRELOAD, sampledBytes, startSampling } from '../lib/procs';
import type { RunningServer } from '../lib/servers';
import type { GenRun } from '../gen/control';
import { runHubBenchmark } from '../micro/hub';
import { runReceiverBenchmark } from '../micro/receiver';
import { Context, Row, Scenario } from './types';
import type { HubVariant } from '../micro/hub';
import type { ReceiverVariant } from '../micro/receiver';
import { perServer, requireConnected, result, sleep, session } from './common';

export interface AllocPoint {
  /** Where the publishes came from: the generator's socket `pub`s or its `POST /publish` requests. */
  source: 'socket' | 'http';
  subscribers: number;
  publishesPerSec: number;
  /** Length of the publishing window (and of the idle one): long enough for MIN_PUBLISHES at the warm-up's rate. */
  windowMs: number;
  publishes: number;
  deliveries: number;
  /** Heap bytes allocated in the publishing window minus an idle window of the same length after it. */
  bytesPerPublish: number;
  bytesPerDelivery: number;
  /**
   * The same difference counted by V8's sampling heap profiler (every allocation, collected ones too; see
   * bench/lib/heap-sampler.ts), over a second pair of windows as long.
   */
  sampledBytesPerPublish: number;
  /** wsgate_heap_allocated_bytes_per_publish right after the run (its own 5 s window). */
  gaugeBytesPerPublish: number;
  idleBytesPerSec: number;
  latencyP99Ms: number;
  /** How long the server took to answer /metrics once the generator had stopped (its backlog). */
  catchUpMs: number;
  lost: number;
}

const HEAP = 'wsgate_heap_allocated_bytes_total';
const PUBS = 'wsgate_publishes_total';
const DELIVERIES = 'wsgate_deliveries_total';
/**
 * A server that fell behind (a slow or shared machine) is still writing its backlog when the generator
 * stops, and answers /metrics after it. Longer than this is a failure, not a backlog.
 */
const CATCH_UP_TIMEOUT_MS = 120_000;
/** A catch-up longer than this is reported: the server did not keep up. */
const BEHIND_MS = 1000;
/**
 * Publishes a window should hold (full runs; --quick keeps its 1 s windows): the background of a window
 * (timers, its scrape) moves by tens of KB between windows, ±100 B per publish over the ~200 publishes
 * 5 s held at 10,000 subscribers here.
 */
const MIN_PUBLISHES = 2000;
/**
 * Publishes the warm-up holds at least (full runs; up to MAX_WINDOW_MS): V8 optimizes the publish path
 * only after thousands of calls, and what compiling allocates (code, deoptimization data) lands in
 * whichever window it falls. With --trace-opt and --trace-deopt, a fresh server at 1,000 and 10,000
 * subscribers compiled deliver, socketPub, jsonFrame and history's append 4–14 s into the run (at 2,500
 * and 200 publishes/s), and deoptimized deliver once when the bytes-sent counter left V8's small-integer
 * range (2^30: 13,000 publishes at 1,000 subscribers), both inside a window measured after 5 s.
 */
const MIN_WARMUP_PUBLISHES = 20_000;
const MAX_WINDOW_MS = 30_000;
const SAMPLER_FLAGS = ['-r', SAMPLER_PRELOAD];

type Publishing = (durationMs: number) => Promise<{ latencyMs: { p99: number }; lost: number }>;

/**
 * Heap counters around a publishing window and then an idle window of the same length (background:
 * timers, the /metrics scrape that ends each window); the difference divided by publishes and by
 * deliveries. Both windows hold one scrape and last as long: a scrape allocates ~1 MB whatever the
 * traffic, so subtracting an idle *rate* scaled to another length (as before) moved the figure by
 * thousands of bytes per publish when publishes were few (10,000 subscribers: ~50/s here).
 * Before them, warm-up windows of the same publishing (until they hold MIN_WARMUP_PUBLISHES) and two
 * scrapes: V8 compiles a function's bytecode, feedback and code once, when it first runs a few times
 * (~500 KB for the publish and scrape paths, half of it code space), which in the first window of a
 * fresh server was ~1,100 B per publish at 10,000 subscribers (~200 publishes) and nothing at 10 (~200,000). The warm-up's rate then sets the
 * window's length, so that it holds MIN_PUBLISHES (up to MAX_WINDOW_MS).
 */
async function measure(port: number, publishing: Publishing, warmupMs: number, minPublishes: number): Promise<Omit<AllocPoint, 'source' | 'subscribers' | 'sampledBytesPerPublish'>> {
  const w0 = await scrapeMetrics(port);
  const minWarmup = minPublishes > 0 ? MIN_WARMUP_PUBLISHES : 0;
  let warmedMs = 0;
  let w1: Map<string, number>;
  do {
    await publishing(warmupMs);
    warmedMs += warmupMs;
    w1 = await scrapeMetrics(port, CATCH_UP_TIMEOUT_MS);
  } while ((w1.get(PUBS) ?? 0) - (w0.get(PUBS) ?? 0) < minWarmup && warmedMs < MAX_WINDOW_MS);
  const warmRate = ((w1.get(PUBS) ?? 0) - (w0.get(PUBS) ?? 0)) / warmedMs;
  const windowMs = Math.round(Math.min(MAX_WINDOW_MS, Math.max(warmupMs, minPublishes / Math.max(warmRate, 1e-3))));
  await sleep(1000);
  const m1 = await scrapeMetrics(port);
  const t1 = performance.now();
  const r = await publishing(windowMs);
  const asked = performance.now();
  // Taken once the server has caught up, so every publish's allocation is in the window.
  const m2 = await scrapeMetrics(port, CATCH_UP_TIMEOUT_MS);
  const t2 = performance.now();
  await sleep(t2 - t1);
  const m3 = await scrapeMetrics(port);
  const t3 = performance.now();
  const get = (m: Map<string, number>, k: string): number => m.get(k) ?? NaN;
  const idle = get(m3, HEAP) - get(m2, HEAP);
  const work = get(m2, HEAP) - get(m1, HEAP) - idle;
  const pubs = get(m2, PUBS) - get(m1, PUBS);
  const dels = get(m2, DELIVERIES) - get(m1, DELIVERIES);
  return {
    publishesPerSec: Math.round(pubs / (windowMs / 1000)),
    windowMs,
    publishes: pubs,
    deliveries: dels,
    bytesPerPublish: Math.round(work / pubs),
    bytesPerDelivery: Math.round((work / dels) * 100) / 100,
    gaugeBytesPerPublish: Math.round(get(m2, 'wsgate_heap_allocated_bytes_per_publish')),
    idleBytesPerSec: Math.round(idle / ((t3 - t2) / 1000)),
    latencyP99Ms: r.latencyMs.p99,
    catchUpMs: Math.round(t2 - asked),
    lost: r.lost,
  };
}

/** What the scenario measured for wsgate. */
interface AllocOutcome {
  points: AllocPoint[];
  micro: HubVariant[];
  receiver: ReceiverVariant[];
}

/**
 * A publishing window and an idle one as long, each ending with a /metrics scrape and sampled whole by
 * the server's heap sampler: the difference per publish. Run after measure(), so the path is warm and
 * the sampler's slower allocation does not touch the metric's windows.
 */
async function sampledPerPublish(server: RunningServer, publishing: Publishing, windowMs: number): Promise<number> {
  const a = await scrapeMetrics(server.port);
  startSampling(server.child);
  const t1 = performance.now();
  await publishing(windowMs);
  const b = await scrapeMetrics(server.port, CATCH_UP_TIMEOUT_MS);
  const busy = await sampledBytes(server.child);
  const t2 = performance.now();
  startSampling(server.child);
  await sleep(t2 - t1);
  await scrapeMetrics(server.port);
  const idle = await sampledBytes(server.child);
  return Math.round((busy - idle) / ((b.get(PUBS) ?? NaN) - (a.get(PUBS) ?? NaN)));
}

/** One point at `subs` subscribers: the metric's windows, then the sampled pair. */
async function measurePoint(ctx: Context, server: RunningServer, source: AllocPoint['source'], subs: number, publishing: Publishing, windowMs: number, minPublishes: number): Promise<AllocPoint> {
  const m = await measure(server.port, publishing, windowMs, minPublishes);
  const sampled = await sampledPerPublish(server, publishing, m.windowMs);
  const label = source === 'socket' ? 'socket pub' : 'POST /publish';
  ctx.log(`    ${label}, ${subs} subs: ${m.bytesPerPublish} B/publish (sampled ${sampled} B) at ${m.publishesPerSec}/s over ${m.windowMs / 1000} s (p99 ${m.latencyP99Ms} ms, server caught up in ${m.catchUpMs} ms)`);
  return { source, subscribers: subs, ...m, sampledBytesPerPublish: sampled };
}

/** The table: each point by the metric and sampled, the marginal byte per delivery, the in-process figures. */
function allocRows(w: AllocOutcome): Row[] {
  const rows: Row[] = [];
  const socket = w.points.filter((pt) => pt.source === 'socket');
  for (const pt of w.points) {
    const label = pt.source === 'socket' ? `${pt.subscribers} subs` : `POST /publish, ${pt.subscribers} subs`;
    rows.push({ metric: `${label}: bytes/publish (metric)`, unit: 'B', better: 'lower', values: { wsgate: pt.bytesPerPublish } });
    rows.push({ metric: `${label}: bytes/delivery (metric)`, unit: 'B', better: 'lower', values: { wsgate: pt.bytesPerDelivery } });
    rows.push({ metric: `${label}: bytes/publish (sampled)`, unit: 'B', better: 'lower', values: { wsgate: pt.sampledBytesPerPublish } });
  }
  const first = socket[0] as AllocPoint;
  const last = socket[socket.length - 1] as AllocPoint;
  rows.push({
    metric: `marginal bytes per extra delivery (${first.subscribers} → ${last.subscribers} subs)`,
    unit: 'B',
    better: 'lower',
    values: { wsgate: Math.round(((last.bytesPerPublish - first.bytesPerPublish) / (last.subscribers - first.subscribers)) * 1000) / 1000 },
  });
  for (const m of w.micro) {
    rows.push({ metric: `in-process socket pub, ${m.codec} → ${m.codec}, ${m.path === 'scan' ? 'scanned' : 'decoded (general path)'}, ${m.subscribers} subs: bytes/publish`, unit: 'B', better: 'lower', values: { wsgate: m.bytesPerPublish } });
  }
  for (const m of w.receiver) {
    rows.push({ metric: `in-process broker message, ${m.data} data → ${m.codec} subscribers: bytes/publish`, unit: 'B', better: 'lower', values: { wsgate: m.bytesPerPublish } });
    rows.push({ metric: `in-process broker message, ${m.data} data → ${m.codec} subscribers: ns/publish`, unit: 'ns', better: 'lower', values: { wsgate: m.nsPerPublish } });
  }
  return rows;
}

/**
 * JS heap allocation inside wsgate, from its own metrics: socket `pub`s at 10 / 1,000 / 10,000
 * subscribers and `POST /publish` at 10: a publishing window, then an idle window as long (background:
 * timers, scrapes); the difference divided by publishes and by deliveries. Plus in-process figures per
 * source and codec (socket pub scanned or decoded, broker message), which the generator (JSON only,
 * single node) cannot produce.
 */
export const alloc: Scenario = {
  name: 'alloc',
  title: 'Allocation inside wsgate: JS heap bytes per publish and per delivery',
  inDefault: true,
  async run(ctx) {
    const q = ctx.opts.quick;
    const counts = q ? [10, 50] : [10, 1000, 10000];
    const windowMs = q ? 1000 : 5000;
    const minPublishes = q ? 0 : MIN_PUBLISHES;
    // Socket publishes run closed loop (at most windowPerSub deliveries per subscriber in flight), so the
    // rate is what this machine sustains: a fixed rate (once 1,000,000 deliveries/s) swamps a slow or
    // shared one at 1,000 and 10,000 subscribers, and a backlog or losses spoil the window.
    const p = { subscribers: counts.join(','), windowMs, windowPerSub: ctx.opts.window, payloadBytes: 64, httpSubscribers: 10, httpConnections: 1 };
    const servers = ctx.opts.servers.filter((s) => s === 'wsgate');
    const runFor = (subs: number, extra: Partial<GenRun>): Omit<GenRun, 'cmd'> => ({
      mode: 'max',
      rate: 0,
      warmupMs: 0,
      durationMs: windowMs,
      drainMs: 2000,
      payloadBytes: p.payloadBytes,
      numTopics: 1,
      fanout: subs,
      windowPerSub: 0,
      totalSubs: subs,
      httpConnections: 0,
      ...extra,
    });
    const outcomes = await perServer(ctx, servers, async (name) => {
      const points: AllocPoint[] = [];
      for (const subs of counts) {
        points.push(
          await session(ctx, name, async (server, gen): Promise<AllocPoint> => {
            requireConnected(await gen.connect({ subs, numTopics: 1, publishers: 1, publisherIds: 1, concurrency: 256, timeoutMs: 120000 }), subs + 1);
            const publishing = (durationMs: number) => gen.run(runFor(subs, { windowPerSub: p.windowPerSub, durationMs }));
            return measurePoint(ctx, server, 'socket', subs, publishing, windowMs, minPublishes);
          }, SAMPLER_FLAGS),
        );
      }
      points.push(
        await session(ctx, name, async (server, gen): Promise<AllocPoint> => {
          const subs = p.httpSubscribers;
          requireConnected(await gen.connect({ subs, numTopics: 1, publishers: 0, publisherIds: p.httpConnections, concurrency: 100, timeoutMs: 60000 }), subs);
          const publishing = (durationMs: number) => gen.run(runFor(subs, { mode: 'http', httpConnections: p.httpConnections, durationMs }));
          return measurePoint(ctx, server, 'http', subs, publishing, windowMs, minPublishes);
        }, SAMPLER_FLAGS),
      );
      const n = q ? 20000 : 200000;
      const micro = [
        ...counts.map((c) => runHubBenchmark(c, 100, n, 'json', 'scan')),
        runHubBenchmark(counts[0], 100, n, 'msgpack', 'scan'),
        runHubBenchmark(counts[0], 100, n, 'json', 'decode'),
        runHubBenchmark(counts[0], 100, n, 'msgpack', 'decode'),
      ];
      const receiver = (['json', 'msgpack'] as const).flatMap((data) => (['json', 'msgpack'] as const).map((codec) => runReceiverBenchmark(counts[0], data, codec, n)));
      return { points, micro, receiver };
    });
    const w = outcomes.wsgate;
    const rows = w && !('error' in w) ? allocRows(w) : [];
    const behind = w && !('error' in w) ? w.points.filter((pt) => pt.catchUpMs > BEHIND_MS || pt.lost > 0) : [];
    const lagNotes = behind.map(
      (pt) =>
        `${pt.source === 'socket' ? 'socket pub' : 'POST /publish'}, ${pt.subscribers} subs: the server fell behind (p99 ${pt.latencyP99Ms} ms, ${pt.lost} lost, /metrics answered ${pt.catchUpMs} ms after the generator stopped); the figure counts the backlog's work in the window too.`,
    );
    return result('alloc', this.title, p, outcomes, rows, [
      ...lagNotes,
      'Metric figures: (heap allocated during a publishing window − during an idle window of the same length right after it, each ending with one /metrics scrape) / publishes or deliveries in the window, after warm-up windows of the same publishing (at least 20,000 publishes or 30 s: V8 compiles the paths once, ~500 KB) and two scrapes. They include what uWS itself allocates per received message (~90 B: the ArrayBuffer handed to the handler) and the one view needed to read it (~96 B on Node 20).',
      'Sampled figures: the same difference over a second pair of windows as long, counted by V8\'s sampling heap profiler in the server (every allocation, collected objects included; bench/lib/heap-sampler.ts). The metric also counts code V8 compiles in the window and, on Node 20, is GC statistics (noisy where a window holds few GCs); the profiler counts allocations only, stack by stack.',
      'POST /publish: one closed-loop keep-alive connection, one item per request; the per-request HTTP work (request/response objects, body copy) is part of the figure.',
      'In-process: the frame as an ArrayBuffer, read (scan, or decode + validate) and Hub.deliver with default history (100/topic) and a no-op fan-out in place of uWS; broker: EnvelopeReceiver.receive of a NATS-style envelope.',
    ]);
  },
};
