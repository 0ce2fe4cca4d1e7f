import { scrapeMetrics } from '../lib/metrics';
import { runHubBenchmark } from '../micro/hub';
import { Scenario } from './types';
import { perServer, requireConnected, result, sleep, session } from './common';

export interface AllocPoint {
  subscribers: number;
  publishesPerSec: number;
  publishes: number;
  deliveries: number;
  /** Heap bytes allocated in the publishing window minus an equally long idle window. */
  bytesPerPublish: number;
  bytesPerDelivery: number;
  /** wsgate_heap_allocated_bytes_per_publish right after the run (its own 5 s window). */
  gaugeBytesPerPublish: number;
  idleBytesPerSec: number;
  latencyP99Ms: number;
}

const HEAP = 'wsgate_heap_allocated_bytes_total';
const PUBS = 'wsgate_publishes_total';
const DELIVERIES = 'wsgate_deliveries_total';

/**
 * JS heap allocation inside wsgate, from its own metrics, at 10 / 1,000 / 10,000 subscribers:
 * idle window (background: timers, scrapes) then an equally long publishing window at a fixed rate;
 * the difference divided by publishes and by deliveries. Plus the in-process hub micro-benchmark.
 */
export const alloc: Scenario = {
  name: 'alloc',
  title: 'Allocation inside wsgate: JS heap bytes per publish and per delivery',
  inDefault: true,
  async run(ctx) {
    const q = ctx.opts.quick;
    const counts = q ? [10, 50] : [10, 1000, 10000];
    const windowMs = q ? 1000 : 5000;
    const p = { subscribers: counts.join(','), windowMs, maxDeliveriesPerSec: 1_000_000, maxPublishesPerSec: 1000, payloadBytes: 64 };
    const servers = ctx.opts.servers.filter((s) => s === 'wsgate');
    const outcomes = await perServer(ctx, servers, async (name) => {
      const points: AllocPoint[] = [];
      for (const subs of counts) {
        points.push(
          await session(ctx, name, async (server, gen): Promise<AllocPoint> => {
            requireConnected(await gen.connect({ subs, numTopics: 1, publishers: 1, publisherIds: 1, concurrency: 256, timeoutMs: 120000 }), subs + 1);
            const rate = Math.min(p.maxPublishesPerSec, Math.floor(p.maxDeliveriesPerSec / subs));
            await sleep(1000);
            const m0 = await scrapeMetrics(server.port);
            await sleep(windowMs);
            const m1 = await scrapeMetrics(server.port);
            const r = await gen.run({
              mode: 'rate',
              rate,
              warmupMs: 0,
              durationMs: windowMs,
              drainMs: 2000,
              payloadBytes: p.payloadBytes,
              numTopics: 1,
              fanout: subs,
              windowPerSub: 0,
              totalSubs: subs,
              httpConnections: 0,
            });
            const m2 = await scrapeMetrics(server.port);
            const get = (m: Map<string, number>, k: string): number => m.get(k) ?? NaN;
            const idle = get(m1, HEAP) - get(m0, HEAP);
            const work = get(m2, HEAP) - get(m1, HEAP) - idle;
            const pubs = get(m2, PUBS) - get(m1, PUBS);
            const dels = get(m2, DELIVERIES) - get(m1, DELIVERIES);
            return {
              subscribers: subs,
              publishesPerSec: rate,
              publishes: pubs,
              deliveries: dels,
              bytesPerPublish: Math.round(work / pubs),
              bytesPerDelivery: Math.round((work / dels) * 100) / 100,
              gaugeBytesPerPublish: Math.round(get(m2, 'wsgate_heap_allocated_bytes_per_publish')),
              idleBytesPerSec: Math.round(idle / (windowMs / 1000)),
              latencyP99Ms: r.latencyMs.p99,
            };
          }),
        );
      }
      const micro = counts.map((n) => runHubBenchmark(n, 100, q ? 20000 : 200000));
      return { points, micro };
    });
    const rows = [];
    const w = outcomes.wsgate;
    if (w && !('error' in w)) {
      for (const pt of w.points) {
        rows.push({ metric: `${pt.subscribers} subs: bytes/publish (metric)`, unit: 'B', better: 'lower' as const, values: { wsgate: pt.bytesPerPublish } });
        rows.push({ metric: `${pt.subscribers} subs: bytes/delivery (metric)`, unit: 'B', better: 'lower' as const, values: { wsgate: pt.bytesPerDelivery } });
      }
      const first = w.points[0];
      const last = w.points[w.points.length - 1];
      rows.push({
        metric: `marginal bytes per extra delivery (${first.subscribers} → ${last.subscribers} subs)`,
        unit: 'B',
        better: 'lower' as const,
        values: { wsgate: Math.round(((last.bytesPerPublish - first.bytesPerPublish) / (last.subscribers - first.subscribers)) * 1000) / 1000 },
      });
      for (const m of w.micro) {
        rows.push({ metric: `${m.subscribers} subs: bytes/publish (in-process codec+hub)`, unit: 'B', better: 'lower' as const, values: { wsgate: m.bytesPerPublish } });
      }
    }
    return result('alloc', this.title, p, outcomes, rows, [
      'Metric figures: (heap allocated during a publishing window − during an equally long idle window) / publishes or deliveries in the window.',
      'In-process: decode + validate + Hub.deliver with default history (100/topic) and a no-op fan-out in place of uWS.',
    ]);
  },
};
