import { Generator } from '../gen/handle';
import { RunningServer } from '../lib/servers';
import { Context } from './types';
import { MeasuredRun, measuredRun } from './common';

/** p99 target of a sweep step. */
export const P99_LIMIT_MS = 50;

export interface SweepPoint {
  offeredPublishesPerSec: number;
  offeredDeliveriesPerSec: number;
  deliveriesPerSec: number;
  p50: number;
  p99: number;
  p999: number;
  lost: number;
  disconnects: number;
  serverCpuPercent: number;
  generatorCpuPercent: number;
  ok: boolean;
  /** Offered load above 80 % of the generator's self-test capacity. */
  generatorBound: boolean;
}

/** One open-loop run at `rate` publishes/s to `subs` subscribers of one topic. */
export function fixedRun(server: RunningServer | readonly number[], gen: Generator, subs: number, rate: number, durationMs: number, warmupMs: number): Promise<MeasuredRun> {
  return measuredRun(server, gen, {
    mode: 'rate',
    rate,
    warmupMs,
    durationMs,
    drainMs: 3000,
    payloadBytes: 64,
    numTopics: 1,
    fanout: subs,
    windowPerSub: 0,
    totalSubs: subs,
    httpConnections: 0,
  });
}

/**
 * Steps up the offered rate (open loop) until a step misses p99 < P99_LIMIT_MS or loses anything: the
 * highest passed step is the load the server sustains, which a closed-loop run cannot tell apart from
 * its latency. Quick runs take the first two steps only.
 */
export async function sweep(ctx: Context, server: RunningServer | readonly number[], gen: Generator, subs: number, rates: readonly number[]): Promise<SweepPoint[]> {
  const q = ctx.opts.quick;
  const points: SweepPoint[] = [];
  for (const rate of q ? rates.slice(0, 2) : rates) {
    const step = (): Promise<MeasuredRun> => fixedRun(server, gen, subs, rate, q ? 500 : 3000, q ? 200 : 500);
    const passes = (x: MeasuredRun): boolean => x.latencyMs.p99 < P99_LIMIT_MS && x.lost === 0 && x.gaps === 0 && x.disconnects === 0;
    let r = await step();
    // A machine pause can spoil one step; a step fails only if a second try fails too. A try that
    // lost messages left a backlog or dropped connections, so it is not retried.
    if (!passes(r) && r.lost + r.gaps === 0 && r.disconnects === 0) r = await step();
    const ok = passes(r);
    const offered = rate * subs;
    points.push({
      offeredPublishesPerSec: rate,
      offeredDeliveriesPerSec: offered,
      deliveriesPerSec: r.deliveriesPerSec,
      p50: r.latencyMs.p50,
      p99: r.latencyMs.p99,
      p999: r.latencyMs.p999,
      lost: r.lost + r.gaps,
      disconnects: r.disconnects,
      serverCpuPercent: r.serverCpuPercent,
      generatorCpuPercent: r.generatorCpuPercent,
      ok,
      generatorBound: ctx.generatorCapacity !== null && offered > 0.8 * ctx.generatorCapacity,
    });
    ctx.log(`    ${rate}/s → p99 ${r.latencyMs.p99} ms, lost ${r.lost + r.gaps}, CPU server ${r.serverCpuPercent} % generator ${r.generatorCpuPercent} %${ok ? '' : ' (stop)'}`);
    if (!ok) break;
  }
  return points;
}

/** The highest offered publishes/s a sweep passed (0 if none). */
export function sustainedRate(points: readonly SweepPoint[]): number {
  const passed = points.filter((x) => x.ok);
  return passed.length ? passed[passed.length - 1].offeredPublishesPerSec : 0;
}
