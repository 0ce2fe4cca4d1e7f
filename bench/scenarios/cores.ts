import { Generator } from '../gen/handle';
import { GenRun } from '../gen/control';
import { pinning } from '../lib/procs';
import { SERVERS, startServer, stopServer } from '../lib/servers';
import { Scenario } from './types';
import { MeasuredRun, maxRatePlan, measuredRun, perServer, requireConnected, result, row, waitReady } from './common';

/**
 * --workers (issue 21): one process with 1 and with 2 worker threads at the same offered load. Subscribers
 * are handed to the workers round-robin, the publisher lands on one of them, so most deliveries of a
 * publish are made by a worker that received it over the shared-memory mesh. Two shapes: one topic to
 * every subscriber, and many topics (each publish for a few subscribers).
 */
const CASES = [
  { key: '1 worker', workers: 1 },
  { key: '2 workers', workers: 2 },
] as const;
type CaseKey = (typeof CASES)[number]['key'];

const GOAL_CPU_RATIO = 1.15;

export interface CoresOutcome {
  workers: number;
  fanoutFixed: MeasuredRun;
  fanoutMax: MeasuredRun;
  manyFixed: MeasuredRun;
  lost: number;
}

export const cores: Scenario = {
  name: 'cores',
  title: 'One process, 1 vs 2 worker threads (--workers): same offered load, 1,000 subscribers spread over the workers',
  inDefault: false,
  async run(ctx) {
    const q = ctx.opts.quick;
    const p = { subscribers: q ? 40 : 1000, manyTopics: q ? 10 : 200, payloadBytes: 64, fixedRate: q ? 50 : 50, manyRate: q ? 200 : 2000, warmupMs: q ? 200 : 1000, durationMs: q ? 500 : 4000, windowPerSub: ctx.opts.window };
    if (!ctx.opts.servers.includes('wsgate')) return result('cores', this.title, p, {}, [], ['Skipped: wsgate is not among the selected servers.']);
    const fan = { payloadBytes: p.payloadBytes, numTopics: 1, fanout: p.subscribers, totalSubs: p.subscribers, httpConnections: 0 };
    const many = { ...fan, numTopics: p.manyTopics, fanout: p.subscribers / p.manyTopics };
    const fixed = (shape: typeof fan, rate: number): Omit<GenRun, 'cmd'> => ({ ...shape, mode: 'rate', rate, warmupMs: p.warmupMs, durationMs: p.durationMs, drainMs: 3000, windowPerSub: 0 });
    const outcomes = await perServer<CoresOutcome, CaseKey>(ctx, CASES.map((c) => c.key), async (key) => {
      const c = CASES.find((x) => x.key === key) ?? CASES[0];
      const server = await startServer(SERVERS.wsgate, ['--workers', String(c.workers)]);
      let gen: Generator | null = null;
      try {
        await waitReady(server.port);
        gen = await Generator.start(pinning()?.generator ?? null, { host: '127.0.0.1', port: server.port, dialect: SERVERS.wsgate.dialect }, ctx.opts.threads);
        const conn = await gen.connect({ subs: p.subscribers, numTopics: 1, publishers: 1, publisherIds: 1, concurrency: 200, timeoutMs: 60000 });
        requireConnected(conn, p.subscribers + 1);
        const fanoutFixed = await measuredRun(server, gen, fixed(fan, p.fixedRate));
        const fanoutMax = await measuredRun(server, gen, maxRatePlan({ warmupMs: p.warmupMs, durationMs: p.durationMs, payloadBytes: p.payloadBytes, numTopics: 1, totalSubs: p.subscribers, windowPerSub: p.windowPerSub }));
        await gen.close();
        gen = await Generator.start(pinning()?.generator ?? null, { host: '127.0.0.1', port: server.port, dialect: SERVERS.wsgate.dialect }, ctx.opts.threads);
        requireConnected(await gen.connect({ subs: p.subscribers, numTopics: p.manyTopics, publishers: 1, publisherIds: 1, concurrency: 200, timeoutMs: 60000 }), p.subscribers + 1);
        const manyFixed = await measuredRun(server, gen, fixed(many, p.manyRate));
        const lost = fanoutFixed.lost + fanoutMax.lost + manyFixed.lost;
        ctx.log(`    ${c.key}: ${fanoutMax.deliveriesPerSec} deliveries/s max; CPU ${fanoutFixed.serverCpuPercent} % at ${p.fixedRate} pub/s; lost ${lost}`);
        return { workers: c.workers, fanoutFixed, fanoutMax, manyFixed, lost };
      } finally {
        await gen?.close();
        await stopServer(server);
      }
    });
    const perDelivery = (r: MeasuredRun): number | null => (r.deliveriesPerSec > 0 ? Math.round((r.serverCpuPercent * 1e7) / r.deliveriesPerSec) : null);
    const one = outcomes['1 worker'];
    const two = outcomes['2 workers'];
    const verdicts: string[] = [];
    if (one !== undefined && two !== undefined && !('error' in one) && !('error' in two)) {
      for (const [label, pick] of [['fan-out', (o: CoresOutcome) => o.fanoutFixed], ['many topics', (o: CoresOutcome) => o.manyFixed]] as const) {
        const a = perDelivery(pick(one));
        const b = perDelivery(pick(two));
        if (a !== null && b !== null) verdicts.push(`${label}: CPU per delivery with 2 workers ${(b / a).toFixed(2)}× one worker's at the same offered load (goal ≤ ${GOAL_CPU_RATIO}×: ${b / a <= GOAL_CPU_RATIO ? 'met' : 'not met'}).`);
      }
    }
    return {
      ...result(
        'cores',
        this.title,
        p,
        outcomes,
        [
          row(outcomes, `fan-out ${p.fixedRate} pub/s: server CPU`, '%', 'lower', (r) => r.fanoutFixed.serverCpuPercent),
          row(outcomes, `fan-out ${p.fixedRate} pub/s: CPU per delivery`, 'ns', 'lower', (r) => perDelivery(r.fanoutFixed)),
          row(outcomes, `fan-out ${p.fixedRate} pub/s: p99`, 'ms', 'lower', (r) => r.fanoutFixed.latencyMs.p99),
          row(outcomes, 'fan-out max rate: deliveries/s', '/s', 'higher', (r) => r.fanoutMax.deliveriesPerSec),
          row(outcomes, 'fan-out max rate: CPU per delivery', 'ns', 'lower', (r) => perDelivery(r.fanoutMax)),
          row(outcomes, `${p.manyTopics} topics ${p.manyRate} pub/s: server CPU`, '%', 'lower', (r) => r.manyFixed.serverCpuPercent),
          row(outcomes, `${p.manyTopics} topics ${p.manyRate} pub/s: CPU per delivery`, 'ns', 'lower', (r) => perDelivery(r.manyFixed)),
          row(outcomes, 'lost', 'msgs', 'lower', (r) => r.lost),
          row(outcomes, 'generator CPU (max rate)', '%', 'lower', (r) => r.fanoutMax.generatorCpuPercent),
        ],
        [
          ...verdicts,
          'The server process is pinned to the server core like every other case, so 2 workers share one core here: these rows compare cost, not scaling. On this 2-core machine the generator owns the other core; deliveries/s at max rate is bound by the generator (see its CPU row).',
          'Cross-thread cost per message in isolation: `node dist/bench/micro/worker-ring.js` (shared-memory ring against postMessage).',
        ],
      ),
      ratioBase: '1 worker',
    };
  },
};
