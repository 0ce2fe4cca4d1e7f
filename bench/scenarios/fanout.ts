import { Scenario } from './types';
import { MeasuredRun, maxRatePlan, measuredRun, perServer, requireConnected, result, row, session } from './common';

/** 1 topic × 1,000 subscribers, 1 publisher, 64-byte payloads, as fast as the server delivers. */
export const fanout: Scenario = {
  name: 'fanout',
  title: 'Fan-out at max rate (1 topic, 1 publisher, 64 B)',
  inDefault: true,
  async run(ctx) {
    const q = ctx.opts.quick;
    const p = { subscribers: q ? 20 : 1000, payloadBytes: 64, windowPerSub: ctx.opts.window, warmupMs: q ? 300 : 2000, durationMs: q ? 1000 : 5000 };
    const outcomes = await perServer(ctx, ctx.opts.servers, (name) =>
      session(ctx, name, async (server, gen): Promise<MeasuredRun> => {
        const c = await gen.connect({ subs: p.subscribers, numTopics: 1, publishers: 1, publisherIds: 1, concurrency: 200, timeoutMs: 60000 });
        requireConnected(c, p.subscribers + 1);
        return measuredRun(server, gen, maxRatePlan({ warmupMs: p.warmupMs, durationMs: p.durationMs, payloadBytes: p.payloadBytes, numTopics: 1, totalSubs: p.subscribers, windowPerSub: p.windowPerSub }));
      }),
    );
    return result('fanout', this.title, p, outcomes, [
      row(outcomes, 'deliveries/s', '/s', 'higher', (r) => r.deliveriesPerSec),
      row(outcomes, 'latency p50', 'ms', 'lower', (r) => r.latencyMs.p50),
      row(outcomes, 'latency p99', 'ms', 'lower', (r) => r.latencyMs.p99),
      row(outcomes, 'latency p99.9', 'ms', 'lower', (r) => r.latencyMs.p999),
      row(outcomes, 'lost', 'msgs', 'lower', (r) => r.lost + r.gaps),
      row(outcomes, 'server CPU', '%', 'lower', (r) => r.serverCpuPercent),
      row(outcomes, 'server CPU per delivery', 'ns', 'lower', (r) => Math.round((r.serverCpuPercent * 1e7) / r.deliveriesPerSec)),
      row(outcomes, 'generator CPU', '%', 'lower', (r) => r.generatorCpuPercent),
    ], [
      `Closed loop: at most ${p.windowPerSub} deliveries per subscriber in flight, so queues stay bounded; latency at max rate is mostly that window divided by throughput (Little's law): compare latencies at fixed rates.`,
      'CPU rows: % of one core used by each process during the run; the one near 100 % is the bottleneck. When it is the generator, compare servers by server CPU per delivery.',
    ]);
  },
};
