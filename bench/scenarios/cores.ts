import { Generator } from '../gen/handle';
import { GenRun } from '../gen/control';
import { GC_PRELOAD, collectGarbage, pinning, rssBytes } from '../lib/procs';
import { RunningServer, SERVERS, startServer, stopServer } from '../lib/servers';
import { Context, Row, Scenario } from './types';
import { MeasuredRun, maxRatePlan, measuredRun, perServer, requireConnected, result, row, sleep, waitReady } from './common';

/**
 * --workers (issue 21): one process without the flag, with 1 and with 2 worker threads, at the same
 * offered load. Four measurements per case, each on fresh connections:
 * - fan-out: one topic, subscribers handed to the workers round-robin, the publisher on one of them;
 * - many topics: each publish for a few subscribers (most topics have subscribers on both workers), at
 *   a fixed rate and at max rate;
 * - cross-worker: every subscriber of the published topic on one worker, the publisher on the other
 *   (connections are accepted round-robin: one generator thread connecting one at a time alternates
 *   them, so subscriber i holds topic i mod 2 and the last connection, the publisher, lands with the
 *   odd ones; only topic 0 is published), at a fixed rate and at max rate;
 * - local topics: many topics whose subscribers are all on one worker each (connected one at a time as in
 *   cross-worker: subscriber i holds topic i mod 2k, so topic t's are on worker t mod 2), the publisher on
 *   one of them publishing to every topic: what interest routing saves (a worker without subscribers of
 *   a topic receives none of its messages);
 * - idle memory: server RSS growth per idle subscribed connection, read after a full collection in
 *   every thread (bench/lib/gc-on-signal.ts). Few topics, so the figure is the connection's: a topic
 *   with subscribers on k workers holds k topic states (see docs/workers.md), which many topics with
 *   few subscribers each would add to a per-connection figure.
 */
const CASES = [
  { key: 'no --workers flag', args: [] as string[], full: true },
  { key: '1 worker', args: ['--workers', '1'], full: false },
  { key: '2 workers', args: ['--workers', '2'], full: false },
] as const;
type CaseKey = (typeof CASES)[number]['key'];

const GOAL_CPU_RATIO = 1.15;
const GOAL_CROSS_US = 2;
const GOAL_MEMORY_RATIO = 1.05;

export interface CoresOutcome {
  fanoutFixed: MeasuredRun;
  fanoutMax: MeasuredRun;
  manyFixed: MeasuredRun;
  /** null in a quick run. */
  manyMax: MeasuredRun | null;
  crossFixed: MeasuredRun;
  /** null in a quick run. */
  crossMax: MeasuredRun | null;
  localFixed: MeasuredRun;
  /** Records that crossed between workers per publish (0 without workers), per fixed-rate case. */
  mesh: { many: number | null; cross: number | null; local: number | null };
  /** null in a quick run. */
  idleBytesPerConnection: number | null;
  lost: number;
}

type Params = ReturnType<typeof params>;

function params(ctx: Context) {
  const q = ctx.opts.quick;
  return {
    subscribers: q ? 40 : 1000,
    manyTopics: q ? 10 : 200,
    crossSubscribers: q ? 10 : 50,
    idleConnections: 10000,
    idleTopics: 10,
    payloadBytes: 64,
    fixedRate: 50,
    manyRate: q ? 200 : 2000,
    crossRate: q ? 200 : 500,
    localTopics: q ? 4 : 40,
    localSubscribers: q ? 8 : 200,
    warmupMs: q ? 100 : 1000,
    durationMs: q ? 300 : 8000,
    drainMs: q ? 1000 : 3000,
    settleMs: 500,
    /** Generator threads: one is plenty for a quick run's few connections and starts faster. */
    threads: q ? 1 : ctx.opts.threads,
    windowPerSub: ctx.opts.window,
  };
}

const fixed = (p: Params, numTopics: number, subs: number, rate: number): Omit<GenRun, 'cmd'> => ({
  payloadBytes: p.payloadBytes,
  numTopics,
  fanout: subs / numTopics,
  totalSubs: subs,
  httpConnections: 0,
  mode: 'rate',
  rate,
  warmupMs: p.warmupMs,
  durationMs: p.durationMs,
  drainMs: p.drainMs,
  windowPerSub: 0,
});

/** The closed-loop max-rate run of the same shape. */
const atMax = (p: Params, numTopics: number, subs: number): Omit<GenRun, 'cmd'> =>
  maxRatePlan({ warmupMs: p.warmupMs, durationMs: p.durationMs, payloadBytes: p.payloadBytes, numTopics, totalSubs: subs, windowPerSub: p.windowPerSub });

/** Runs `fn` with a fresh generator of `threads` threads aimed at the server, then closes it. */
async function withGenerator<T>(server: RunningServer, threads: number, fn: (gen: Generator) => Promise<T>): Promise<T> {
  const gen = await Generator.start(pinning()?.generator ?? null, { host: '127.0.0.1', port: server.port, dialect: SERVERS.wsgate.dialect }, threads);
  try {
    return await fn(gen);
  } finally {
    await gen.close();
  }
}

/** wsgate_broker_received_total and the socket publishes, from the process's /metrics. */
async function meshCounts(port: number): Promise<[records: number, publishes: number]> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const value = (name: string): number => Number(text.split('\n').find((l) => l.startsWith(name + ' '))?.slice(name.length + 1) ?? NaN);
  return [value('wsgate_broker_received_total'), value('wsgate_publishes_total{source="socket"}')];
}

/** Runs `fn` and reads how many records crossed between workers per publish meanwhile. */
async function counted<T>(server: RunningServer, fn: () => Promise<T>): Promise<[T, number | null]> {
  const [r0, p0] = await meshCounts(server.port);
  const out = await fn();
  const [r1, p1] = await meshCounts(server.port);
  const per = (r1 - r0) / (p1 - p0);
  return [out, Number.isFinite(per) ? Math.round(per * 100) / 100 : null];
}

async function heldRss(server: RunningServer): Promise<number> {
  await collectGarbage(server.child);
  return rssBytes(server.pid);
}

/** Server RSS growth per idle subscribed connection, both readings after a full GC in every thread. */
async function idleMemory(server: RunningServer, p: Params): Promise<number> {
  const before = await heldRss(server);
  return withGenerator(server, p.threads, async (gen) => {
    const c = await gen.connect({ subs: p.idleConnections, numTopics: p.idleTopics, publishers: 0, publisherIds: 1, concurrency: 200, timeoutMs: 60000 });
    requireConnected(c, p.idleConnections);
    await sleep(p.settleMs);
    return Math.round(((await heldRss(server)) - before) / c.ok);
  });
}

async function measureCase(ctx: Context, p: Params, args: readonly string[]): Promise<CoresOutcome> {
  const server = await startServer(SERVERS.wsgate, args, ['-r', GC_PRELOAD]);
  try {
    await waitReady(server.port);
    // A quick run (the smoke test, which must stay short) leaves the idle memory out.
    const idleBytesPerConnection = ctx.opts.quick ? null : await idleMemory(server, p);
    const [fanoutFixed, fanoutMax] = await withGenerator(server, p.threads, async (gen) => {
      requireConnected(await gen.connect({ subs: p.subscribers, numTopics: 1, publishers: 1, publisherIds: 1, concurrency: 200, timeoutMs: 60000 }), p.subscribers + 1);
      return [await measuredRun(server, gen, fixed(p, 1, p.subscribers, p.fixedRate)), await measuredRun(server, gen, atMax(p, 1, p.subscribers))];
    });
    const [[manyFixed, manyMesh], manyMax] = await withGenerator(server, p.threads, async (gen) => {
      requireConnected(await gen.connect({ subs: p.subscribers, numTopics: p.manyTopics, publishers: 1, publisherIds: 1, concurrency: 200, timeoutMs: 60000 }), p.subscribers + 1);
      const atRate = await counted(server, () => measuredRun(server, gen, fixed(p, p.manyTopics, p.subscribers, p.manyRate)));
      // A quick run (the smoke test) skips it: the fan-out's max-rate run covers the same code.
      return [atRate, ctx.opts.quick ? null : await measuredRun(server, gen, atMax(p, p.manyTopics, p.subscribers))] as const;
    });
    // One thread, one connection at a time: the acceptor alternates them between the workers. That one
    // thread also receives every delivery, hence the smaller load (it fell behind at 100,000/s here).
    const [[crossFixed, crossMesh], crossMax] = await withGenerator(server, 1, async (gen) => {
      const subs = 2 * p.crossSubscribers - 1;
      requireConnected(await gen.connect({ subs, numTopics: 2, publishers: 1, publisherIds: 1, concurrency: 1, timeoutMs: 60000 }), subs + 1);
      const atRate = await counted(server, () => measuredRun(server, gen, fixed(p, 1, p.crossSubscribers, p.crossRate)));
      // At max rate records come in batches, one wake for many: the hand-off's own cost.
      return [atRate, ctx.opts.quick ? null : await measuredRun(server, gen, atMax(p, 1, p.crossSubscribers))] as const;
    });
    const [localFixed, localMesh] = await withGenerator(server, 1, async (gen) => {
      requireConnected(await gen.connect({ subs: p.localSubscribers, numTopics: p.localTopics, publishers: 1, publisherIds: 1, concurrency: 1, timeoutMs: 60000 }), p.localSubscribers + 1);
      return counted(server, () => measuredRun(server, gen, fixed(p, p.localTopics, p.localSubscribers, p.manyRate)));
    });
    const lost = fanoutFixed.lost + fanoutMax.lost + manyFixed.lost + (manyMax?.lost ?? 0) + crossFixed.lost + (crossMax?.lost ?? 0) + localFixed.lost;
    const mesh = { many: manyMesh, cross: crossMesh, local: localMesh };
    return { fanoutFixed, fanoutMax, manyFixed, manyMax, crossFixed, crossMax, localFixed, mesh, idleBytesPerConnection, lost };
  } finally {
    await stopServer(server);
  }
}

/** Server CPU per delivery, ns (CPU % of one core × 10^7 / deliveries per second). */
const perDelivery = (r: MeasuredRun): number | null => (r.deliveriesPerSec > 0 ? Math.round((r.serverCpuPercent * 1e7) / r.deliveriesPerSec) : null);
/** Server CPU per publish, µs. */
const perPublish = (r: MeasuredRun): number | null => (r.publishesPerSec > 0 ? Math.round((r.serverCpuPercent * 1e5) / r.publishesPerSec) / 10 : null);

function rows(p: Params, outcomes: Partial<Record<CaseKey, CoresOutcome | { error: string }>>): Row[] {
  return [
    row(outcomes, `fan-out ${p.fixedRate} pub/s: server CPU`, '%', 'lower', (r) => r.fanoutFixed.serverCpuPercent),
    row(outcomes, `fan-out ${p.fixedRate} pub/s: CPU per delivery`, 'ns', 'lower', (r) => perDelivery(r.fanoutFixed)),
    row(outcomes, `fan-out ${p.fixedRate} pub/s: p99`, 'ms', 'lower', (r) => r.fanoutFixed.latencyMs.p99),
    row(outcomes, 'fan-out max rate: deliveries/s', '/s', 'higher', (r) => r.fanoutMax.deliveriesPerSec),
    row(outcomes, 'fan-out max rate: CPU per delivery', 'ns', 'lower', (r) => perDelivery(r.fanoutMax)),
    row(outcomes, `${p.manyTopics} topics ${p.manyRate} pub/s: server CPU`, '%', 'lower', (r) => r.manyFixed.serverCpuPercent),
    row(outcomes, `${p.manyTopics} topics ${p.manyRate} pub/s: deliveries/s`, '/s', 'higher', (r) => r.manyFixed.deliveriesPerSec),
    row(outcomes, `${p.manyTopics} topics ${p.manyRate} pub/s: CPU per delivery`, 'ns', 'lower', (r) => perDelivery(r.manyFixed)),
    row(outcomes, `${p.manyTopics} topics max rate: deliveries/s`, '/s', 'higher', (r) => r.manyMax?.deliveriesPerSec ?? null),
    row(outcomes, `${p.manyTopics} topics max rate: CPU per delivery`, 'ns', 'lower', (r) => (r.manyMax === null ? null : perDelivery(r.manyMax))),
    row(outcomes, `cross-worker ${p.crossRate} pub/s to ${p.crossSubscribers}: server CPU`, '%', 'lower', (r) => r.crossFixed.serverCpuPercent),
    row(outcomes, `cross-worker ${p.crossRate} pub/s to ${p.crossSubscribers}: deliveries/s`, '/s', 'higher', (r) => r.crossFixed.deliveriesPerSec),
    row(outcomes, `cross-worker ${p.crossRate} pub/s to ${p.crossSubscribers}: CPU per delivery`, 'ns', 'lower', (r) => perDelivery(r.crossFixed)),
    row(outcomes, `cross-worker ${p.crossRate} pub/s to ${p.crossSubscribers}: CPU per publish`, 'µs', 'lower', (r) => perPublish(r.crossFixed)),
    row(outcomes, `cross-worker max rate to ${p.crossSubscribers}: publishes/s`, '/s', 'higher', (r) => r.crossMax?.publishesPerSec ?? null),
    row(outcomes, `cross-worker max rate to ${p.crossSubscribers}: CPU per publish`, 'µs', 'lower', (r) => (r.crossMax === null ? null : perPublish(r.crossMax))),
    row(outcomes, `${p.localTopics} local topics ${p.manyRate} pub/s: server CPU`, '%', 'lower', (r) => r.localFixed.serverCpuPercent),
    row(outcomes, `${p.localTopics} local topics ${p.manyRate} pub/s: deliveries/s`, '/s', 'higher', (r) => r.localFixed.deliveriesPerSec),
    row(outcomes, `${p.localTopics} local topics ${p.manyRate} pub/s: CPU per delivery`, 'ns', 'lower', (r) => perDelivery(r.localFixed)),
    row(outcomes, `${p.manyTopics} topics ${p.manyRate} pub/s: records between workers per publish`, '', 'lower', (r) => r.mesh.many),
    row(outcomes, `cross-worker ${p.crossRate} pub/s: records between workers per publish`, '', 'lower', (r) => r.mesh.cross),
    row(outcomes, `${p.localTopics} local topics ${p.manyRate} pub/s: records between workers per publish`, '', 'lower', (r) => r.mesh.local),
    row(outcomes, 'idle memory per connection (RSS after full GC in every thread)', 'B', 'lower', (r) => r.idleBytesPerConnection),
    row(outcomes, 'lost', 'msgs', 'lower', (r) => r.lost),
    row(outcomes, 'generator CPU (fan-out max rate)', '%', 'lower', (r) => r.fanoutMax.generatorCpuPercent),
    row(outcomes, 'generator CPU (many topics max rate)', '%', 'lower', (r) => r.manyMax?.generatorCpuPercent ?? null),
    row(outcomes, 'generator CPU (cross-worker max rate)', '%', 'lower', (r) => r.crossMax?.generatorCpuPercent ?? null),
  ];
}

function verdicts(outcomes: Partial<Record<CaseKey, CoresOutcome | { error: string }>>): string[] {
  const ok = (o: CoresOutcome | { error: string } | undefined): o is CoresOutcome => o !== undefined && !('error' in o);
  const one = outcomes['1 worker'];
  const two = outcomes['2 workers'];
  const plain = outcomes['no --workers flag'];
  const out: string[] = [];
  const met = (yes: boolean): string => (yes ? 'met' : 'not met');
  if (ok(one) && ok(two)) {
    const shapes = [
      ['fan-out', (o: CoresOutcome) => o.fanoutFixed],
      ['many topics', (o: CoresOutcome) => o.manyFixed],
      ['many topics at max rate', (o: CoresOutcome) => o.manyMax],
      ['cross-worker', (o: CoresOutcome) => o.crossFixed],
      ['local topics', (o: CoresOutcome) => o.localFixed],
    ] as const;
    for (const [label, pick] of shapes) {
      const runs = [pick(one), pick(two)];
      const a = runs[0] ? perDelivery(runs[0]) : null;
      const b = runs[1] ? perDelivery(runs[1]) : null;
      if (a !== null && b !== null) out.push(`${label}: CPU per delivery with 2 workers ${(b / a).toFixed(2)}× one worker's at the same offered load (goal ≤ ${GOAL_CPU_RATIO}×: ${met(b / a <= GOAL_CPU_RATIO)}).`);
    }
    const a = perPublish(one.crossFixed);
    const b = perPublish(two.crossFixed);
    if (a !== null && b !== null) out.push(`Cross-thread cost per publish per receiving worker (cross-worker CPU per publish, 2 workers − 1 worker): ${(b - a).toFixed(1)} µs (goal ≤ ${GOAL_CROSS_US} µs: ${met(b - a <= GOAL_CROSS_US)}).`);
    const am = one.crossMax === null ? null : perPublish(one.crossMax);
    const bm = two.crossMax === null ? null : perPublish(two.crossMax);
    if (am !== null && bm !== null) out.push(`The same at max rate, where records come in batches (one wake for many): ${(bm - am).toFixed(1)} µs (goal ≤ ${GOAL_CROSS_US} µs: ${met(bm - am <= GOAL_CROSS_US)}).`);
    const m = (two.idleBytesPerConnection ?? NaN) / (one.idleBytesPerConnection ?? NaN);
    if (Number.isFinite(m)) out.push(`Idle memory per connection with 2 workers ${m.toFixed(2)}× one worker's (goal ≤ ${GOAL_MEMORY_RATIO}×: ${met(m <= GOAL_MEMORY_RATIO)}).`);
  }
  if (ok(one) && ok(plain)) {
    const a = perDelivery(plain.manyFixed);
    const b = perDelivery(one.manyFixed);
    if (a !== null && b !== null) out.push(`--workers 1 against no flag (the same single-thread code path), many topics CPU per delivery: ${(b / a).toFixed(2)}× (goal: no slower, within this machine's run-to-run noise).`);
  }
  return out;
}

export const cores: Scenario = {
  name: 'cores',
  title: 'One process, no --workers flag vs 1 vs 2 worker threads: same offered load (fan-out, many topics, cross-worker, local topics, idle memory)',
  inDefault: false,
  async run(ctx) {
    const p = params(ctx);
    if (!ctx.opts.servers.includes('wsgate')) return result('cores', this.title, p, {}, [], ['Skipped: wsgate is not among the selected servers.']);
    // A quick run leaves out the no-flag case: it runs the same code as --workers 1.
    const cases = CASES.filter((c) => !ctx.opts.quick || !c.full);
    const outcomes = await perServer<CoresOutcome, CaseKey>(ctx, cases.map((c) => c.key), async (key) => {
      const c = CASES.find((x) => x.key === key) ?? CASES[1];
      const o = await measureCase(ctx, p, c.args);
      ctx.log(`    ${c.key}: many topics ${perDelivery(o.manyFixed)} ns/delivery, cross-worker ${perPublish(o.crossFixed)} µs/publish, local topics ${perDelivery(o.localFixed)} ns/delivery, idle ${o.idleBytesPerConnection ?? '(quick run: not measured)'} B/conn; lost ${o.lost}`);
      return o;
    });
    return {
      ...result('cores', this.title, p, outcomes, rows(p, outcomes), [
        ...verdicts(outcomes),
        `${pinning() === null ? "Unpinned (--no-pin, or one core): the server's threads and the generator share every core as the scheduler places them" : 'The server process is pinned to the server core like every other case, so 2 workers share one core here: these rows compare cost, not scaling. On this 2-core machine the generator owns the other core'}; deliveries/s at max rate is bound by the generator (see its CPU row).`,
        'Cross-thread cost per message in isolation: `node dist/bench/micro/worker-ring.js` (shared-memory ring against postMessage).',
      ]),
      ratioBase: '1 worker',
    };
  },
};
