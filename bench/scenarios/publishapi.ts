import { RunResult } from '../gen/control';
import { Scenario } from './types';
import { perServer, requireConnected, result, row, session } from './common';

/** HTTP `POST /publish` (wsgate only): closed-loop keep-alive clients, 100 subscribers receive. */
export const publishapi: Scenario = {
  name: 'publishapi',
  title: 'HTTP POST /publish throughput and latency (wsgate only; 100 subscribers, 64 B)',
  inDefault: true,
  async run(ctx) {
    const q = ctx.opts.quick;
    const p = { subscribers: q ? 5 : 100, httpConnections: q ? 2 : 16, payloadBytes: 64, durationMs: q ? 1000 : 5000 };
    const servers = ctx.opts.servers.filter((s) => s === 'wsgate');
    const outcomes = await perServer(ctx, servers, (name) =>
      session(ctx, name, async (_s, gen): Promise<RunResult> => {
        const c = await gen.connect({ subs: p.subscribers, numTopics: 1, publishers: 0, publisherIds: p.httpConnections, concurrency: 100, timeoutMs: 60000 });
        requireConnected(c, p.subscribers);
        return gen.run({
          mode: 'http',
          rate: 0,
          warmupMs: 0,
          durationMs: p.durationMs,
          drainMs: 3000,
          payloadBytes: p.payloadBytes,
          numTopics: 1,
          fanout: p.subscribers,
          windowPerSub: 0,
          totalSubs: p.subscribers,
          httpConnections: p.httpConnections,
        });
      }),
    );
    return result('publishapi', this.title, p, outcomes, [
      row(outcomes, 'requests/s', '/s', 'higher', (r) => Math.round(r.httpOk / r.seconds)),
      row(outcomes, 'request p50', 'ms', 'lower', (r) => r.httpLatencyMs?.p50 ?? null),
      row(outcomes, 'request p99', 'ms', 'lower', (r) => r.httpLatencyMs?.p99 ?? null),
      row(outcomes, 'delivery p50 (from request sent)', 'ms', 'lower', (r) => r.latencyMs.p50),
      row(outcomes, 'delivery p99', 'ms', 'lower', (r) => r.latencyMs.p99),
      row(outcomes, 'failed requests', '', 'lower', (r) => r.httpFailed),
      row(outcomes, 'lost deliveries', 'msgs', 'lower', (r) => r.lost + r.gaps),
    ], ['Each HTTP connection keeps one request in flight (closed loop), one item per request.']);
  },
};
