import { Generator } from '../gen/handle';
import { GenRun } from '../gen/control';
import { GC_PRELOAD, collectGarbage, pinning, rssBytes, threadSleeps } from '../lib/procs';
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
 * The same loads against raw uWS with one and two threads (bench/baselines/uws.ts --threads) give the
 * floor of the ratios: what any gateway on uWS pays for a second thread, since uWS pub/sub does not
 * cross threads (each thread publishes every message its subscribers need); `--numbering owner`: what
 * one sequence per topic adds when, as in wsgate, the topic's owner thread numbers every publish (a
 * publish arriving elsewhere crosses twice); `--numbering shared`: numbered where it arrives, through
 * counters in shared memory (crosses once). Not in a quick run.
 */
const CASES = [
  { key: 'no --workers flag', server: 'wsgate', args: [] as string[], full: true },
  { key: '1 worker', server: 'wsgate', args: ['--workers', '1'], full: false },
  { key: '2 workers', server: 'wsgate', args: ['--workers', '2'], full: false },
  { key: 'raw uWS, 1 thread', server: 'uws', args: [] as string[], full: true },
  { key: 'raw uWS, 2 threads', server: 'uws', args: ['--threads', '2'], full: true },
  { key: 'raw uWS, 2 threads, owner-numbered', server: 'uws', args: ['--threads', '2', '--numbering', 'owner'], full: true },
  { key: 'raw uWS, 2 threads, shared-numbered', server: 'uws', args: ['--threads', '2', '--numbering', 'shared'], full: true },
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
  /** Server thread sleeps (each ended by a wake) per publish in the fixed-rate many-topics and cross-worker cases. */
  sleeps: { many: number; cross: number };
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
  const gen = await Generator.start(pinning()?.generator ?? null, { host: '127.0.0.1', port: server.port, dialect: server.def.dialect }, threads);
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

/**
 * Runs a fixed-rate `fn` and counts the server threads' sleeps per publish meanwhile (warm-up and drain
 * included, so it is per publish of the warm-up and measured window together: both run at the rate).
 */
async function slept<T extends MeasuredRun>(server: RunningServer, p: Params, fn: () => Promise<T>): Promise<[T, number]> {
  const before = threadSleeps(server.pid);
  const out = await fn();
  const publishes = (out.published * (p.warmupMs + p.durationMs)) / p.durationMs;
  return [out, publishes > 0 ? Math.round(((threadSleeps(server.pid) - before) / publishes) * 100) / 100 : 0];
}

/** Runs `fn` and reads how many records crossed between workers per publish meanwhile (wsgate only). */
async function counted<T>(server: RunningServer, fn: () => Promise<T>): Promise<[T, number | null]> {
  if (server.def.name !== 'wsgate') return [await fn(), null];
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

async function measureCase(ctx: Context, p: Params, c: (typeof CASES)[number]): Promise<CoresOutcome> {
  const wsgate = c.server === 'wsgate';
  const server = await startServer(SERVERS[c.server], c.args, ['-r', GC_PRELOAD]);
  try {
    if (wsgate) await waitReady(server.port);
    // A quick run (the smoke test, which must stay short) leaves the idle memory out; the floor needs none.
    const idleBytesPerConnection = ctx.opts.quick || !wsgate ? null : await idleMemory(server, p);
    const [fanoutFixed, fanoutMax] = await withGenerator(server, p.threads, async (gen) => {
      requireConnected(await gen.connect({ subs: p.subscribers, numTopics: 1, publishers: 1, publisherIds: 1, concurrency: 200, timeoutMs: 60000 }), p.subscribers + 1);
      return [await measuredRun(server, gen, fixed(p, 1, p.subscribers, p.fixedRate)), await measuredRun(server, gen, atMax(p, 1, p.subscribers))];
    });
    const [[[manyFixed, manySleeps], manyMesh], manyMax] = await withGenerator(server, p.threads, async (gen) => {
      requireConnected(await gen.connect({ subs: p.subscribers, numTopics: p.manyTopics, publishers: 1, publisherIds: 1, concurrency: 200, timeoutMs: 60000 }), p.subscribers + 1);
      const atRate = await counted(server, () => slept(server, p, () => measuredRun(server, gen, fixed(p, p.manyTopics, p.subscribers, p.manyRate))));
      // A quick run (the smoke test) skips it: the fan-out's max-rate run covers the same code.
      return [atRate, ctx.opts.quick ? null : await measuredRun(server, gen, atMax(p, p.manyTopics, p.subscribers))] as const;
    });
    // One thread, one connection at a time: the acceptor alternates them between the workers. That one
    // thread also receives every delivery, hence the smaller load (it fell behind at 100,000/s here).
    const [[[crossFixed, crossSleeps], crossMesh], crossMax] = await withGenerator(server, 1, async (gen) => {
      const subs = 2 * p.crossSubscribers - 1;
      requireConnected(await gen.connect({ subs, numTopics: 2, publishers: 1, publisherIds: 1, concurrency: 1, timeoutMs: 60000 }), subs + 1);
      const atRate = await counted(server, () => slept(server, p, () => measuredRun(server, gen, fixed(p, 1, p.crossSubscribers, p.crossRate))));
      // At max rate records come in batches, one wake for many: the hand-off's own cost.
      return [atRate, ctx.opts.quick ? null : await measuredRun(server, gen, atMax(p, 1, p.crossSubscribers))] as const;
    });
    const [localFixed, localMesh] = await withGenerator(server, 1, async (gen) => {
      requireConnected(await gen.connect({ subs: p.localSubscribers, numTopics: p.localTopics, publishers: 1, publisherIds: 1, concurrency: 1, timeoutMs: 60000 }), p.localSubscribers + 1);
      return counted(server, () => measuredRun(server, gen, fixed(p, p.localTopics, p.localSubscribers, p.manyRate)));
    });
    const lost = fanoutFixed.lost + fanoutMax.lost + manyFixed.lost + (manyMax?.lost ?? 0) + crossFixed.lost + (crossMax?.lost ?? 0) + localFixed.lost;
    const mesh = { many: manyMesh, cross: crossMesh, local: localMesh };
    const sleeps = { many: manySleeps, cross: crossSleeps };
    return { fanoutFixed, fanoutMax, manyFixed, manyMax, crossFixed, crossMax, localFixed, mesh, sleeps, idleBytesPerConnection, lost };
  } finally {
    await stopServer(server);
  }
}

/** Server CPU per delivery, ns (CPU % of one core × 10^7 / deliveries per second). */
const perDelivery = (r: MeasuredRun): number | null => (r.deliveriesPerSec > 0 ? Math.round((r.serverCpuPercent * 1e7) / r.deliveriesPerSec) : null);
/** Server CPU per publish, µs. */
const perPublish = (r: MeasuredRun): number | null => (r.publishesPerSec > 0 ? Math.round((r.serverCpuPercent * 1e5) / r.publishesPerSec) / 10 : null);

function rows(p: Params, outcomes: Outcomes): Row[] {
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
    row(outcomes, `${p.manyTopics} topics ${p.manyRate} pub/s: server thread sleeps per publish`, '', 'lower', (r) => r.sleeps.many),
    row(outcomes, `cross-worker ${p.crossRate} pub/s: server thread sleeps per publish`, '', 'lower', (r) => r.sleeps.cross),
    row(outcomes, 'idle memory per connection (RSS after full GC in every thread)', 'B', 'lower', (r) => r.idleBytesPerConnection),
    row(outcomes, 'lost', 'msgs', 'lower', (r) => r.lost),
    row(outcomes, 'generator CPU (fan-out max rate)', '%', 'lower', (r) => r.fanoutMax.generatorCpuPercent),
    row(outcomes, 'generator CPU (many topics max rate)', '%', 'lower', (r) => r.manyMax?.generatorCpuPercent ?? null),
    row(outcomes, 'generator CPU (cross-worker max rate)', '%', 'lower', (r) => r.crossMax?.generatorCpuPercent ?? null),
  ];
}

type Outcomes = Partial<Record<CaseKey, CoresOutcome | { error: string }>>;

const SHAPES = [
  ['fan-out', (o: CoresOutcome) => o.fanoutFixed],
  ['many topics', (o: CoresOutcome) => o.manyFixed],
  ['many topics at max rate', (o: CoresOutcome) => o.manyMax],
  ['cross-worker', (o: CoresOutcome) => o.crossFixed],
  ['local topics', (o: CoresOutcome) => o.localFixed],
] as const;

const ok = (o: CoresOutcome | { error: string } | undefined): o is CoresOutcome => o !== undefined && !('error' in o);
const met = (yes: boolean): string => (yes ? 'met' : 'not met');

/** CPU per delivery of `two` ÷ `one` for each shape (null where a run is missing). */
function shapeRatios(one: CoresOutcome, two: CoresOutcome): [label: string, ratio: number | null][] {
  return SHAPES.map(([label, pick]) => {
    const a = pick(one);
    const b = pick(two);
    const x = a === null ? null : perDelivery(a);
    const y = b === null ? null : perDelivery(b);
    return [label, x !== null && y !== null ? y / x : null];
  });
}

/** Extra CPU per publish of the receiving thread in the cross-worker case: [fixed rate, max rate] (µs). */
function crossCost(one: CoresOutcome, two: CoresOutcome): [number | null, number | null] {
  const diff = (a: MeasuredRun | null, b: MeasuredRun | null): number | null => {
    const x = a === null ? null : perPublish(a);
    const y = b === null ? null : perPublish(b);
    return x !== null && y !== null ? y - x : null;
  };
  return [diff(one.crossFixed, two.crossFixed), diff(one.crossMax, two.crossMax)];
}

function workerVerdicts(one: CoresOutcome, two: CoresOutcome): string[] {
  const out: string[] = [];
  for (const [label, r] of shapeRatios(one, two)) {
    if (r !== null) out.push(`${label}: CPU per delivery with 2 workers ${r.toFixed(2)}× one worker's at the same offered load (goal ≤ ${GOAL_CPU_RATIO}×: ${met(r <= GOAL_CPU_RATIO)}).`);
  }
  const [atRate, atMaxRate] = crossCost(one, two);
  if (atRate !== null) out.push(`Cross-thread cost per publish per receiving worker (cross-worker CPU per publish, 2 workers − 1 worker): ${atRate.toFixed(1)} µs (goal ≤ ${GOAL_CROSS_US} µs: ${met(atRate <= GOAL_CROSS_US)}).`);
  if (atMaxRate !== null) out.push(`The same at max rate, where records come in batches (one wake for many): ${atMaxRate.toFixed(1)} µs (goal ≤ ${GOAL_CROSS_US} µs: ${met(atMaxRate <= GOAL_CROSS_US)}).`);
  const m = (two.idleBytesPerConnection ?? NaN) / (one.idleBytesPerConnection ?? NaN);
  if (Number.isFinite(m)) out.push(`Idle memory per connection with 2 workers ${m.toFixed(2)}× one worker's (goal ≤ ${GOAL_MEMORY_RATIO}×: ${met(m <= GOAL_MEMORY_RATIO)}).`);
  return out;
}

/** What a second thread costs raw uWS at the same loads (`raw2`: which two-thread case), and wsgate's ratio beside it. */
type FloorCase = 'raw uWS, 2 threads' | 'raw uWS, 2 threads, owner-numbered' | 'raw uWS, 2 threads, shared-numbered';

const FLOOR_LABELS: Record<FloorCase, string> = {
  'raw uWS, 2 threads': 'raw uWS, 2 threads, not numbered (each publish framed where it arrives)',
  'raw uWS, 2 threads, owner-numbered': "raw uWS, 2 threads, numbered by the topic's owner thread (wsgate's design)",
  'raw uWS, 2 threads, shared-numbered': 'raw uWS, 2 threads, numbered where the publish arrives (shared counters)',
};

function floorVerdicts(outcomes: Outcomes, raw2: FloorCase): string[] {
  const raw1 = outcomes['raw uWS, 1 thread'];
  const two = outcomes[raw2];
  if (!ok(raw1) || !ok(two)) return [];
  const w1 = outcomes['1 worker'];
  const w2 = outcomes['2 workers'];
  const ours = ok(w1) && ok(w2) ? shapeRatios(w1, w2) : null;
  const parts = shapeRatios(raw1, two).map(([label, r], i) => {
    const w = ours?.[i]?.[1] ?? null;
    return r === null ? null : `${label} ${r.toFixed(2)}×${w === null ? '' : ` (wsgate ${w.toFixed(2)}×)`}`;
  });
  const [atRate, atMaxRate] = crossCost(raw1, two);
  const us = (v: number | null): string => (v === null ? 'n/a' : `${v.toFixed(1)} µs`);
  return [
    `Floor, ${FLOOR_LABELS[raw2]} ÷ 1 thread, CPU per delivery at the same offered load: ${parts.filter((x) => x !== null).join(', ')}; cross-thread cost per publish (2 threads − 1 thread) ${us(atRate)} at the fixed rate, ${us(atMaxRate)} at max rate.`,
  ];
}

function verdicts(outcomes: Outcomes): string[] {
  const one = outcomes['1 worker'];
  const two = outcomes['2 workers'];
  const plain = outcomes['no --workers flag'];
  const out = ok(one) && ok(two) ? workerVerdicts(one, two) : [];
  if (ok(one) && ok(plain)) {
    const a = perDelivery(plain.manyFixed);
    const b = perDelivery(one.manyFixed);
    if (a !== null && b !== null) out.push(`--workers 1 against no flag (the same single-thread code path), many topics CPU per delivery: ${(b / a).toFixed(2)}× (goal: no slower, within this machine's run-to-run noise).`);
  }
  return [...out, ...(Object.keys(FLOOR_LABELS) as FloorCase[]).flatMap((c) => floorVerdicts(outcomes, c))];
}

export const cores: Scenario = {
  name: 'cores',
  title: 'One process, no --workers flag vs 1 vs 2 worker threads, and raw uWS with 1 and 2 threads as the floor: same offered load (fan-out, many topics, cross-worker, local topics, idle memory)',
  inDefault: false,
  async run(ctx) {
    const p = params(ctx);
    if (!ctx.opts.servers.includes('wsgate')) return result('cores', this.title, p, {}, [], ['Skipped: wsgate is not among the selected servers.']);
    // A quick run leaves out the no-flag case: it runs the same code as --workers 1.
    const cases = CASES.filter((c) => !ctx.opts.quick || !c.full);
    const outcomes = await perServer<CoresOutcome, CaseKey>(ctx, cases.map((c) => c.key), async (key) => {
      const c = CASES.find((x) => x.key === key) ?? CASES[1];
      const o = await measureCase(ctx, p, c);
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
