import { Generator } from '../gen/handle';
import { GenRun } from '../gen/control';
import { BrokerKind, BrokerServer } from '../lib/brokers';
import { pinning } from '../lib/procs';
import { RunningServer, SERVERS, startServer, stopServer } from '../lib/servers';
import { Context, Scenario } from './types';
import { MeasuredRun, maxRatePlan, measuredRun, perServer, requireConnected, result, row, waitReady } from './common';
import { P99_LIMIT_MS, SweepPoint, sustainedRate, sweep } from './sweep';

/**
 * Cross-node fan-out (issue 5): publish on node A, subscribers spread over nodes A and B through NATS
 * and Redis, next to one node with the in-process memory broker; plus all subscribers on A (what being
 * in a cluster costs a node whose subscribers are all local).
 */
const SINGLE = 'single node (memory)';
const CASES = [
  { key: SINGLE, broker: 'memory', nodes: 1 },
  { key: 'NATS A+B', broker: 'nats', nodes: 2 },
  { key: 'Redis A+B', broker: 'redis', nodes: 2 },
  { key: 'NATS JetStream A+B', broker: 'nats-jetstream', nodes: 2 },
  { key: 'NATS A only', broker: 'nats', nodes: 1 },
  { key: 'Redis A only', broker: 'redis', nodes: 1 },
] as const satisfies readonly { key: string; broker: BrokerKind | 'nats-jetstream' | 'memory'; nodes: 1 | 2 }[];
type CaseKey = (typeof CASES)[number]['key'];

/** Open-loop steps (publishes/s to all subscribers) for the sustained-throughput sweep. */
const SWEEP = [500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 5000];

/** Goal of issue 5, on loopback. */
const GOAL_THROUGHPUT_COST = 0.2;
const GOAL_ADDED_P99_MS = 2;
/** Goal 4 of issue 14: what a delivery costs the node receiving through the broker, vs one node. */
const GOAL_RECEIVER_CPU = 1.2;

export interface CrossNodeOutcome {
  broker: string;
  nodes: number;
  /** Priming runs needed until every subscriber's broker subscription was live. */
  primingRuns: number;
  fixed: MeasuredRun;
  max: MeasuredRun;
  sweep: SweepPoint[];
  /** Highest swept publishes/s with p99 < 50 ms and no loss. */
  sustained: number;
  /** Per run: lost + sequence gaps it caused (the generator's gap count is cumulative). */
  fixedLost: number;
  maxLost: number;
}

type CaseOutcomes = Partial<Record<CaseKey, CrossNodeOutcome | { error: string }>>;
interface Commands {
  fixed: Omit<GenRun, 'cmd'>;
  max: Omit<GenRun, 'cmd'>;
  prime: Omit<GenRun, 'cmd'>;
}
interface CrossParams {
  subscribers: number;
  fixedRate: number;
}

/** One case on fresh nodes: priming until no loss, the fixed-rate run, the max-rate run, the sweep. */
async function measureCase(ctx: Context, p: CrossParams, broker: BrokerServer | null, c: (typeof CASES)[number], cmds: Commands): Promise<CrossNodeOutcome> {
  return clusterSession(ctx, broker, c.broker === 'nats-jetstream' ? ['--nats-jetstream'] : [], c.nodes, async (servers, gen) => {
    const conn = await gen.connect({ subs: p.subscribers, numTopics: 1, publishers: 1, publisherIds: 1, concurrency: 200, timeoutMs: 60000, subPorts: servers.map((s) => s.port) });
    requireConnected(conn, p.subscribers + 1);
    // Subscriptions at the broker complete asynchronously: publish a little until a run loses
    // nothing, so the measured runs start with every subscriber reachable.
    let primingRuns = 0;
    let gaps = 0;
    for (;;) {
      const r = await gen.run(cmds.prime);
      primingRuns++;
      gaps = r.gaps;
      if (r.lost === 0) break;
      if (primingRuns === 25) throw new Error(`subscribers still missing deliveries after ${primingRuns} priming runs (lost ${r.lost})`);
    }
    const pids = [...servers.map((s) => s.pid), ...(broker?.pid === undefined ? [] : [broker.pid])];
    const fixed = await measuredRun(pids, gen, cmds.fixed);
    const fixedLost = fixed.lost + fixed.gaps - gaps;
    const max = await measuredRun(pids, gen, cmds.max);
    const maxLost = max.lost + max.gaps - fixed.gaps;
    ctx.log(`    ${max.deliveriesPerSec} deliveries/s; ${p.fixedRate} pub/s p99 ${fixed.latencyMs.p99} ms; lost ${fixedLost + maxLost}; server-side CPU ${max.serverCpuPercent} %`);
    // Last: its final step is overload by design and may leave a backlog behind.
    const points = await sweep(ctx, pids, gen, p.subscribers, SWEEP);
    return { broker: c.broker, nodes: c.nodes, primingRuns, fixed, max, sweep: points, sustained: sustainedRate(points), fixedLost, maxLost };
  });
}

/**
 * Node A's CPU over every delivery (one node: all of them), node B's over its own subscribers' share
 * (they alternate between the nodes): what a delivery costs the node that makes it.
 */
function nodeCpu(subscribers: number): (o: CrossNodeOutcome, node: 0 | 1) => number | null {
  const onB = Math.floor(subscribers / 2);
  return (o, node) => {
    const r = o.max;
    if (node === 1 && o.nodes < 2) return null;
    const share = o.nodes < 2 ? 1 : node === 1 ? onB / subscribers : (subscribers - onB) / subscribers;
    const cpu = r.processCpuPercent[node] ?? 0;
    return r.deliveriesPerSec > 0 ? Math.round((cpu * 1e7) / (r.deliveriesPerSec * share)) : null;
  };
}

/** Each case against one node (issue 5's and issue 14's goals), then what the generator's capacity means for the sweep. */
function crossVerdicts(outcomes: CaseOutcomes, p: CrossParams, nodeCpuPerDelivery: (o: CrossNodeOutcome, node: 0 | 1) => number | null, capacity: number | null): string[] {
  const single = outcomes[SINGLE];
  const verdicts: string[] = [];
  if (single !== undefined && !('error' in single)) {
    for (const c of CASES) {
      const o = outcomes[c.key];
      if (c.key === SINGLE || o === undefined || 'error' in o) continue;
      const cost = 1 - o.max.deliveriesPerSec / single.max.deliveriesPerSec;
      const sustainedCost = single.sustained > 0 ? 1 - o.sustained / single.sustained : 0;
      const added = o.fixed.latencyMs.p99 - single.fixed.latencyMs.p99;
      const pct = (x: number) => `${x > 0 ? '−' : '+'}${Math.abs(x * 100).toFixed(1)} %`;
      const verdict = (ok: boolean) => (ok ? 'met' : 'not met');
      const mine = c.nodes === 2 ? nodeCpuPerDelivery(o, 1) : null;
      const base = nodeCpuPerDelivery(single, 0);
      const cpuRatio = mine !== null && base !== null && base > 0 ? mine / base : null;
      verdicts.push(
        `${c.key}: throughput ${pct(cost)} closed loop (${verdict(cost < GOAL_THROUGHPUT_COST)}), ${pct(sustainedCost)} sustained open loop (${verdict(sustainedCost < GOAL_THROUGHPUT_COST)}); p99 at ${p.fixedRate} pub/s ${added >= 0 ? '+' : '−'}${Math.abs(added).toFixed(2)} ms (${verdict(added < GOAL_ADDED_P99_MS)}) vs single node.${cpuRatio === null ? '' : ` Receiving node B: CPU per delivery ${cpuRatio.toFixed(2)}× one node's (goal of issue 14 ≤ ${GOAL_RECEIVER_CPU}×: ${verdict(cpuRatio <= GOAL_RECEIVER_CPU)}).`}`,
      );
    }
  }
  const boundFrom = capacity === null ? undefined : SWEEP.find((r) => r * p.subscribers > 0.8 * capacity);
  verdicts.push(
    capacity === null
      ? "Generator capacity not measured in this run (add `selftest` to the scenarios): sweep steps near it are as much the generator's limit as the servers'."
      : `Generator self-test capacity ${capacity.toLocaleString('en-US')} msgs/s: ${boundFrom === undefined ? 'no sweep step offers more than 80 % of it' : `sweep steps from ${boundFrom} publishes/s offer more than 80 % of it, so there the generator may be the limit`}.`,
  );
  return verdicts;
}

/** Starts `nodes` wsgate nodes on the server core (with `--broker` unless memory), then a generator aimed at node A. */
async function clusterSession<T>(ctx: Context, broker: BrokerServer | null, flags: readonly string[], nodes: number, fn: (servers: RunningServer[], gen: Generator) => Promise<T>): Promise<T> {
  const servers: RunningServer[] = [];
  let gen: Generator | null = null;
  try {
    for (let i = 0; i < nodes; i++) servers.push(await startServer(SERVERS.wsgate, broker === null ? [] : ['--broker', broker.url, ...flags]));
    for (const s of servers) await waitReady(s.port);
    gen = await Generator.start(pinning()?.generator ?? null, { host: '127.0.0.1', port: servers[0].port, dialect: SERVERS.wsgate.dialect }, ctx.opts.threads);
    return await fn(servers, gen);
  } finally {
    await gen?.close();
    for (const s of servers) await stopServer(s);
  }
}

export const crossnode: Scenario = {
  name: 'crossnode',
  title: 'Cross-node fan-out: publish on node A, subscribers on A and B, through NATS, Redis and NATS JetStream (1 topic, 64 B)',
  inDefault: true,
  async run(ctx) {
    const q = ctx.opts.quick;
    const p = {
      subscribers: q ? 20 : 1000,
      payloadBytes: 64,
      fixedRate: 100,
      fixedWarmupMs: q ? 200 : 500,
      fixedDurationMs: q ? 500 : 3000,
      windowPerSub: ctx.opts.window,
      maxWarmupMs: q ? 300 : 1000,
      maxDurationMs: q ? 1000 : 5000,
    };
    if (!ctx.opts.servers.includes('wsgate')) return result('crossnode', this.title, p, {}, [], ['Skipped: wsgate is not among the selected (or built) servers.']);
    const serverCore = pinning()?.server ?? null;
    const brokers = new Map<BrokerKind | 'nats-jetstream', BrokerServer>();
    const brokerFor = async (kind: BrokerKind | 'nats-jetstream'): Promise<BrokerServer> => {
      const known = brokers.get(kind);
      if (known !== undefined) return known;
      // JetStream gets a server of its own (nats-server -js, temp store dir).
      const b = kind === 'nats-jetstream' ? await BrokerServer.start('nats', serverCore, null, true) : await BrokerServer.start(kind, serverCore);
      brokers.set(kind, b);
      return b;
    };
    const base = { payloadBytes: p.payloadBytes, numTopics: 1, fanout: p.subscribers, totalSubs: p.subscribers, httpConnections: 0 };
    const fixedCmd: Omit<GenRun, 'cmd'> = { ...base, mode: 'rate', rate: p.fixedRate, warmupMs: p.fixedWarmupMs, durationMs: p.fixedDurationMs, drainMs: 3000, windowPerSub: 0 };
    const maxCmd = maxRatePlan({ warmupMs: p.maxWarmupMs, durationMs: p.maxDurationMs, payloadBytes: p.payloadBytes, numTopics: 1, totalSubs: p.subscribers, windowPerSub: p.windowPerSub });
    const primeCmd: Omit<GenRun, 'cmd'> = { ...base, mode: 'rate', rate: 50, warmupMs: 0, durationMs: 200, drainMs: 300, windowPerSub: 0 };
    const cmds: Commands = { fixed: fixedCmd, max: maxCmd, prime: primeCmd };

    let outcomes: CaseOutcomes;
    try {
      outcomes = await perServer<CrossNodeOutcome, CaseKey>(ctx, CASES.map((c) => c.key), async (key) => {
        const c = CASES.find((x) => x.key === key) ?? CASES[0];
        return measureCase(ctx, p, c.broker === 'memory' ? null : await brokerFor(c.broker), c, cmds);
      });
    } finally {
      for (const b of brokers.values()) await b.stop();
    }

    const nodeCpuPerDelivery = nodeCpu(p.subscribers);
    const twoNodes = Object.fromEntries(CASES.filter((c) => c.nodes === 2).map((c) => [c.key, outcomes[c.key]]).filter(([, o]) => o !== undefined)) as typeof outcomes;
    const verdicts = crossVerdicts(outcomes, p, nodeCpuPerDelivery, ctx.generatorCapacity);
    const cpuPerDelivery = (r: MeasuredRun): number | null => (r.deliveriesPerSec > 0 ? Math.round((r.serverCpuPercent * 1e7) / r.deliveriesPerSec) : null);
    return {
      ...result(
        'crossnode',
        this.title,
        p,
        outcomes,
        [
          row(outcomes, 'deliveries/s (max rate)', '/s', 'higher', (r) => r.max.deliveriesPerSec),
          row(outcomes, `sustained deliveries/s (open loop, p99 < ${P99_LIMIT_MS} ms, no loss)`, '/s', 'higher', (r) => r.sustained * p.subscribers),
          row(outcomes, 'max rate: latency p50', 'ms', 'lower', (r) => r.max.latencyMs.p50),
          row(outcomes, 'max rate: latency p99', 'ms', 'lower', (r) => r.max.latencyMs.p99),
          row(outcomes, `${p.fixedRate} pub/s: p50`, 'ms', 'lower', (r) => r.fixed.latencyMs.p50),
          row(outcomes, `${p.fixedRate} pub/s: p99`, 'ms', 'lower', (r) => r.fixed.latencyMs.p99),
          row(outcomes, `${p.fixedRate} pub/s: p99.9`, 'ms', 'lower', (r) => r.fixed.latencyMs.p999),
          row(outcomes, 'lost', 'msgs', 'lower', (r) => r.fixedLost + r.maxLost),
          row(outcomes, 'server-side CPU (nodes + broker)', '%', 'lower', (r) => r.max.serverCpuPercent),
          row(outcomes, 'server-side CPU per delivery', 'ns', 'lower', (r) => cpuPerDelivery(r.max)),
          row(outcomes, 'node A CPU per delivery it makes', 'ns', 'lower', (r) => nodeCpuPerDelivery(r, 0)),
          // Two-node cases only: the others have no node B (and a row's null says a case produced nothing).
          row(twoNodes, 'receiving node B CPU per delivery it makes', 'ns', 'lower', (r) => nodeCpuPerDelivery(r, 1)),
          row(outcomes, 'generator CPU', '%', 'lower', (r) => r.max.generatorCpuPercent),
        ],
        [
          `Goal (issue 5): cross-node fan-out costs < ${GOAL_THROUGHPUT_COST * 100} % throughput vs single node and adds < ${GOAL_ADDED_P99_MS} ms p99 on loopback. Throughput is given two ways: the closed-loop max-rate run (at most ${p.windowPerSub} deliveries per subscriber in flight, so it falls with latency as well as with cost), and the highest open-loop step of ${SWEEP.join(', ')} publishes/s (3 s each) that kept p99 < ${P99_LIMIT_MS} ms with no loss. Added p99 is taken at the fixed ${p.fixedRate} publishes/s (open loop), since max-rate latency is mostly the closed-loop window (see fan-out).`,
          ...verdicts,
          `Same generator, payload, window (${p.windowPerSub} per subscriber) and subscriber count as the fan-out table; the publisher is on node A, subscribers alternate between A and B in the A+B columns. "A only": all subscribers on A — with NATS, A delivers its own publishes locally and forwards one copy nobody wants (the cost of being in a cluster); with Redis, every delivery waits for A's own publish to come back from Redis (its cluster-wide order and numbering).`,
          'All server processes (both gateway nodes and the broker) share the server core, the generator has its own: throughput compares the total server-side cost on the same hardware. When single node is generator-bound (generator CPU near 100 %), compare server-side CPU per delivery.',
          'Nodes run with default options plus `--broker` (NATS: core pub/sub, no JetStream, own publishes delivered locally and forwarded with noEcho; Redis: one script per publish assigns the sequence, appends the history and PUBLISHes, and every node delivers from the PUBLISH; NATS JetStream (`--nats-jetstream`): the publishes of a node to a topic are stored in groups in one stream, numbered by expected-last-subject-sequence, and every node delivers from the stream republished copy); each case gets fresh nodes, and runs after priming publishes showed every subscription live.',
        ],
      ),
      ratioBase: SINGLE,
    };
  },
};
