import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { Generator } from '../gen/handle';
import { RunResult } from '../gen/control';
import { pinning, spawnNode, stderrOf, stopProcess } from '../lib/procs';
import { RunningServer, SERVERS, startServer, stopServer } from '../lib/servers';
import { ChurnPlan, ChurnReport } from '../soak/churn';
import { SoakSampler } from '../soak/sampler';
import { PASS_PERCENT, SeriesTrend, SoakSample, SoakTrend, soakTrend } from '../soak/trend';
import { Context, Row, Scenario, ScenarioResult } from './types';
import { requireConnected, result, waitReady } from './common';

export type SoakProfile = 'steady' | 'churn';
export const SOAK_PROFILES: readonly SoakProfile[] = ['steady', 'churn'];
/** Default durations: issue 16's steady run is ≥ 10 minutes; issue 10's churn soak is 30. */
export const SOAK_DEFAULT_SECONDS: Record<SoakProfile, number> = { steady: 600, churn: 1800 };
const SAMPLE_MS = 10_000;
/** A quick (smoke) run samples faster, so its 15 s still give the three samples a trend needs. */
const QUICK_SAMPLE_MS = 4_000;

export interface SoakOutcome {
  profile: SoakProfile;
  samples: SoakSample[];
  trend: SoakTrend;
  /** Steady: the generator's run (loss, latency). */
  steady?: RunResult;
  /** Churn: what the churn driver did and saw. */
  churn?: ChurnReport;
  lost: number;
  samplerErrors: string[];
}

type LoadOutcome = Pick<SoakOutcome, 'steady' | 'churn' | 'lost'>;

/** Issue 16's load: 1,000 subscribers on 10 topics, 10 publishers, 200 publishes/s of 256 B. */
async function steadyLoad(ctx: Context, server: RunningServer, seconds: number, sampler: SoakSampler): Promise<LoadOutcome> {
  const gen = await Generator.start(pinning()?.generator ?? null, { host: '127.0.0.1', port: server.port, dialect: 'plain' }, ctx.opts.threads);
  try {
    requireConnected(await gen.connect({ subs: 1000, numTopics: 10, publishers: 10, publisherIds: 10, concurrency: 200, timeoutMs: 120_000 }), 1010);
    sampler.start();
    const steady = await gen.run({ mode: 'rate', rate: 200, warmupMs: 0, durationMs: seconds * 1000, drainMs: 2000, payloadBytes: 256, numTopics: 10, fanout: 100, windowPerSub: 0, totalSubs: 1000, httpConnections: 0 });
    return { steady, lost: steady.lost + steady.gaps };
  } finally {
    sampler.stop();
    await gen.close();
  }
}

function churnPlan(port: number, seconds: number, quick: boolean, jwtSecret: string): ChurnPlan {
  return {
    port,
    durationMs: seconds * 1000,
    jwtSecret,
    topics: 200,
    conns: quick ? 100 : 1000,
    topicsPerConn: 5,
    connChurnPerSec: quick ? 2 : 10,
    subChurnPerSec: quick ? 5 : 50,
    publishers: 10,
    publishRate: 100,
    payloadBytes: 128,
    checkSubscribers: 20,
    checkRate: 5,
    slowConsumers: 5,
    firehoseRate: 50,
    firehoseBytes: 4096,
    tokenTtlS: quick ? 20 : 120,
  };
}

/** Issue 10's soak: the churn driver (bench/soak/churn.ts) in its own process on the generator core. */
async function churnLoad(ctx: Context, server: RunningServer, seconds: number, sampler: SoakSampler, jwtSecret: string): Promise<LoadOutcome> {
  const child = spawnNode(pinning()?.generator ?? null, [path.join(__dirname, '..', 'soak', 'churn.js'), JSON.stringify(churnPlan(server.port, seconds, ctx.opts.quick, jwtSecret))], true);
  try {
    sampler.start();
    const churn = await new Promise<ChurnReport>((resolve, reject) => {
      child.on('message', (m: { type: 'report'; report: ChurnReport } | { type: 'error'; message: string }) => (m.type === 'report' ? resolve(m.report) : reject(new Error(m.message))));
      child.on('exit', (code) => reject(new Error(`churn driver exited (${code}): ${stderrOf(child)}`)));
    });
    return { churn, lost: churn.check.lost + churn.check.gaps };
  } finally {
    sampler.stop();
    await stopProcess(child, 2000);
  }
}

/** The rows one memory series gives: third means, their change, lowest/highest per third, slope. */
function seriesRows(r: (metric: string, unit: string, better: Row['better'], v: number | null) => Row, name: string, meanName: string, t: SeriesTrend): Row[] {
  return [
    r(`${meanName}, middle third`, 'MB', 'lower', t.middleThirdMeanMB),
    r(`${meanName}, last third`, 'MB', 'lower', t.lastThirdMeanMB),
    r(`${name} last third vs middle third`, '%', 'lower', t.changePercent),
    r(`${name} lowest, middle third`, 'MB', 'lower', t.middleThirdRangeMB[0]),
    r(`${name} lowest, last third`, 'MB', 'lower', t.lastThirdRangeMB[0]),
    r(`${name} highest, middle third`, 'MB', 'lower', t.middleThirdRangeMB[1]),
    r(`${name} highest, last third`, 'MB', 'lower', t.lastThirdRangeMB[1]),
    r(`${name} slope, last two thirds`, 'MB/min', 'lower', t.slopeMBPerMin),
  ];
}

function rows(o: SoakOutcome): Row[] {
  const r = (metric: string, unit: string, better: Row['better'], v: number | null): Row => ({ metric, unit, better, values: { wsgate: v } });
  const t = o.trend;
  const out = [
    r('RSS first sample', 'MB', 'lower', t.rss.firstMB),
    ...seriesRows(r, 'RSS', 'RSS mean', t.rss),
    r('RSS slope, last third', 'MB/min', 'lower', t.rss.lastThirdSlopeMBPerMin),
    ...seriesRows(r, 'JS heap', 'JS heap used mean', t.heap),
    r('event-loop delay p99, worst 10 s window', 'ms', 'lower', t.loopDelayP99MsMax),
    r('event-loop delay max', 'ms', 'lower', t.loopDelayMaxMs),
    r('heap bytes per publish, middle third', 'B', 'lower', t.bytesPerPublishMiddle),
    r('heap bytes per publish, last third', 'B', 'lower', t.bytesPerPublishLast),
    r('heap-meter full GCs', '', 'lower', o.samples[o.samples.length - 1]?.heapMeterCollections ?? null),
    r('messages lost', 'msgs', 'lower', o.lost),
  ];
  if (o.steady) out.push(r('delivery latency p99', 'ms', 'lower', o.steady.latencyMs.p99), r('publishes', '', 'higher', o.steady.published));
  if (o.churn) {
    const c = o.churn;
    out.push(
      r('connections opened', '', 'higher', c.connects),
      r('check topic: deliveries expected', '', 'higher', c.check.expected),
      r('check topic: received', '', 'higher', c.check.received),
      r('slow consumers cut (4008)', '', 'higher', c.slowConsumerCuts),
      r('token refreshes sent', '', 'higher', c.refresh.sent),
      r('token refreshes ok', '', 'higher', c.refresh.ok),
      r('token refreshes refused', '', 'lower', c.refresh.otherErrors),
      r('token refreshes answered unknown_op', '', 'lower', c.refresh.unknownOp),
    );
  }
  return out;
}

/**
 * Long run at a fixed load, sampling the server every 10 s: RSS (/proc), JS heap, event-loop delay and
 * the heap meter (/metrics). Pass line: RSS and heap in the last third within ±5 % of the middle third,
 * and nothing lost. `--profile steady` is issue 16's load, `--profile churn` (default) issue 10's.
 */
export const soak: Scenario = {
  name: 'soak',
  title: 'Soak: memory, heap and event-loop delay over a long run',
  inDefault: false,
  async run(ctx): Promise<ScenarioResult> {
    const profile = ctx.opts.soakProfile;
    const seconds = ctx.opts.durationSeconds ?? (ctx.opts.quick ? 15 : SOAK_DEFAULT_SECONDS[profile]);
    const jwtSecret = randomBytes(24).toString('base64url');
    const extra = profile === 'churn' ? ['--jwt-secret', jwtSecret] : [];
    const sampleMs = ctx.opts.quick ? QUICK_SAMPLE_MS : SAMPLE_MS;
    const params = { profile, seconds, sampleEverySeconds: sampleMs / 1000, passPercent: PASS_PERCENT, jwt: profile === 'churn' };
    ctx.log(`  ${profile} profile for ${seconds} s`);
    const server = await startServer(SERVERS.wsgate, extra);
    let outcome: SoakOutcome;
    try {
      await waitReady(server.port);
      const sampler = new SoakSampler(server.pid, server.port, sampleMs, ctx.log);
      const load = profile === 'steady' ? await steadyLoad(ctx, server, seconds, sampler) : await churnLoad(ctx, server, seconds, sampler, jwtSecret);
      outcome = { profile, samples: sampler.samples, trend: soakTrend(sampler.samples), lost: load.lost, steady: load.steady, churn: load.churn, samplerErrors: sampler.errors };
    } finally {
      await stopServer(server);
    }
    const t = outcome.trend;
    const notes = [
      `Pass line: RSS and JS heap mean over the last third within ±${PASS_PERCENT} % of the middle third, and no message lost: **${t.pass && outcome.lost === 0 ? 'PASS' : 'FAIL'}** (RSS ${t.rss.changePercent} %, heap ${t.heap.changePercent} %, lost ${outcome.lost}).`,
      'Event-loop delay is prom-client\'s monitorEventLoopDelay, reset at every 10 s scrape; the soak is the only scraper.',
      'The machine is shared: other processes may run on the same cores, so latency and CPU figures are noisy.',
    ];
    if (outcome.churn && outcome.churn.refresh.unknownOp > 0) {
      notes.push(`Token refreshes were answered unknown_op ${outcome.churn.refresh.unknownOp} times: this gateway has no in-band refresh yet, so churning connections were closed at token expiry (1008) and reconnected.`);
    }
    if (outcome.samplerErrors.length > 0) notes.push(`Sampling errors: ${outcome.samplerErrors.slice(0, 3).join('; ')}`);
    return result('soak', `${this.title} (${profile}, ${Math.round(seconds / 60)} min)`, params, { wsgate: outcome }, rows(outcome), notes);
  },
};
