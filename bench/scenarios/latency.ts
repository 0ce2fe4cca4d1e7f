import { Scenario } from './types';
import { MeasuredRun, perServer, requireConnected, result, row, session } from './common';
import { P99_LIMIT_MS, SweepPoint, fixedRun, sustainedRate, sweep } from './sweep';

/** Offered publishes/s, stepped until a server misses the target (× subscribers = deliveries/s). */
const SWEEP = [50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 4000, 5000, 6000, 8000];

export interface LatencyOutcome {
  fixed: MeasuredRun[];
  sweep: SweepPoint[];
  /** Highest offered publishes/s with p99 < 50 ms and no loss. */
  maxRateP99Under50ms: number;
}

/**
 * Latency under a fixed, open-loop offered load (each message is stamped with its scheduled send
 * time, so a stalled server cannot hide its backlog: no coordinated omission), at 100 and 500
 * publishes/s to 1,000 subscribers, then a stepped sweep to each server's highest rate with p99 < 50 ms.
 */
export const latency: Scenario = {
  name: 'latency',
  title: 'Latency at fixed offered load (1 topic, 1,000 subscribers, 64 B, open loop)',
  inDefault: true,
  async run(ctx) {
    const q = ctx.opts.quick;
    const p = { subscribers: q ? 20 : 1000, rates: q ? '100' : '100,500', durationMs: q ? 1000 : 5000, p99LimitMs: P99_LIMIT_MS };
    const connect = { subs: p.subscribers, numTopics: 1, publishers: 1, publisherIds: 1, concurrency: 200, timeoutMs: 60000 };
    const outcomes = await perServer(ctx, ctx.opts.servers, async (name): Promise<LatencyOutcome> => {
      const fixed = await session(ctx, name, async (server, gen) => {
        requireConnected(await gen.connect(connect), p.subscribers + 1);
        const runs: MeasuredRun[] = [];
        for (const rate of p.rates.split(',').map(Number)) runs.push(await fixedRun(server, gen, p.subscribers, rate, p.durationMs, 1000));
        return runs;
      });
      // The sweep gets a fresh server: an overloaded fixed-rate run may leave a backlog behind.
      const points = await session(ctx, name, async (server, gen) => {
        requireConnected(await gen.connect(connect), p.subscribers + 1);
        return sweep(ctx, server, gen, p.subscribers, SWEEP);
      });
      return { fixed, sweep: points, maxRateP99Under50ms: sustainedRate(points) };
    });
    const rows = [];
    for (const [i, rate] of p.rates.split(',').entries()) {
      rows.push(row(outcomes, `${rate} pub/s: p50`, 'ms', 'lower', (r: LatencyOutcome) => r.fixed[i].latencyMs.p50));
      rows.push(row(outcomes, `${rate} pub/s: p99`, 'ms', 'lower', (r: LatencyOutcome) => r.fixed[i].latencyMs.p99));
      rows.push(row(outcomes, `${rate} pub/s: p99.9`, 'ms', 'lower', (r: LatencyOutcome) => r.fixed[i].latencyMs.p999));
    }
    rows.push(row(outcomes, 'max pub/s with p99 < 50 ms', '/s', 'higher', (r: LatencyOutcome) => r.maxRateP99Under50ms));
    rows.push(row(outcomes, '… as deliveries/s', '/s', 'higher', (r: LatencyOutcome) => r.maxRateP99Under50ms * p.subscribers));
    const stops: string[] = [];
    for (const [name, o] of Object.entries(outcomes)) {
      if ('error' in o) continue;
      const last = o.sweep[o.sweep.length - 1];
      if (last === undefined) continue;
      const why = last.ok
        ? 'passed every step'
        : `failed at ${last.offeredPublishesPerSec}/s (p99 ${last.p99} ms, lost ${last.lost}, ${last.disconnects} subscribers disconnected; CPU server ${last.serverCpuPercent} %, generator ${last.generatorCpuPercent} %)`;
      const bound = o.sweep.find((x) => x.generatorBound);
      stops.push(
        `${name}: ${why}.${bound ? ` From ${bound.offeredPublishesPerSec}/s on the offered load exceeds 80 % of the generator's capacity: the server may go further.` : ''}`,
      );
    }
    return result('latency', this.title, p, outcomes, rows, [
      ...stops,
      `Sweep (on a fresh server) steps (publishes/s): ${SWEEP.join(', ')}, 3 s each; a step fails on p99 ≥ ${P99_LIMIT_MS} ms (twice in a row) or any loss.`,
      'At fixed rates CPU use is high on both sides even at moderate load: with little queued, each delivery is its own write and read; batching grows with load. CPU per step is in the JSON.',
    ]);
  },
};
