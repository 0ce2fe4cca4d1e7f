import { Scenario } from './types';
import { MeasuredRun, maxRatePlan, measuredRun, perServer, requireConnected, result, row, session } from './common';

/** 10,000 subscribers over 1,000 topics (10 each), 10 publishers on random topics, 256-byte payloads. */
export const manytopics: Scenario = {
  name: 'manytopics',
  title: 'Many topics at max rate (10,000 subs over 1,000 topics, 10 publishers, 256 B)',
  inDefault: true,
  async run(ctx) {
    const q = ctx.opts.quick;
    const p = {
      subscribers: q ? 100 : 10000,
      topics: q ? 10 : 1000,
      publishers: 10,
      payloadBytes: 256,
      windowPerSub: ctx.opts.window,
      warmupMs: q ? 300 : 2000,
      durationMs: q ? 1000 : 5000,
    };
    const outcomes = await perServer(ctx, ctx.opts.servers, (name) =>
      session(ctx, name, async (server, gen): Promise<MeasuredRun> => {
        const c = await gen.connect({
          subs: p.subscribers,
          numTopics: p.topics,
          publishers: p.publishers,
          publisherIds: p.publishers,
          concurrency: 200,
          timeoutMs: 120000,
        });
        requireConnected(c, p.subscribers + p.publishers);
        return measuredRun(server, gen, maxRatePlan({ warmupMs: p.warmupMs, durationMs: p.durationMs, payloadBytes: p.payloadBytes, numTopics: p.topics, totalSubs: p.subscribers, windowPerSub: p.windowPerSub }));
      }),
    );
    return result('manytopics', this.title, p, outcomes, [
      row(outcomes, 'deliveries/s', '/s', 'higher', (r) => r.deliveriesPerSec),
      row(outcomes, 'publishes/s', '/s', 'higher', (r) => r.publishesPerSec),
      row(outcomes, 'latency p50', 'ms', 'lower', (r) => r.latencyMs.p50),
      row(outcomes, 'latency p99', 'ms', 'lower', (r) => r.latencyMs.p99),
      row(outcomes, 'lost', 'msgs', 'lower', (r) => r.lost + r.gaps),
      row(outcomes, 'server CPU', '%', 'lower', (r) => r.serverCpuPercent),
      row(outcomes, 'server CPU per delivery', 'ns', 'lower', (r) => Math.round((r.serverCpuPercent * 1e7) / r.deliveriesPerSec)),
      row(outcomes, 'generator CPU', '%', 'lower', (r) => r.generatorCpuPercent),
    ], [
      `Closed loop with ${p.windowPerSub} deliveries per subscriber in flight (${p.windowPerSub * p.subscribers} in all): latency here is mostly queueing in that window.`,
      'With 10 subscribers per topic most reads carry one frame, so the generator pays a read per delivery: check the CPU rows.',
    ]);
  },
};
