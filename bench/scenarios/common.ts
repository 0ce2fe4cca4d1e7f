import { Generator } from '../gen/handle';
import { ConnectResult, GenRun, RunResult } from '../gen/control';
import { cpuSeconds, pinning } from '../lib/procs';
import { RunningServer, SERVERS, ServerName, startServer, stopServer } from '../lib/servers';
import { Context, Row, ScenarioResult } from './types';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts the server and a generator aimed at it, runs `fn`, and always stops both (by PID). `nodeFlags`: see startServer. */
export async function session<T>(
  ctx: Context,
  name: ServerName,
  fn: (server: RunningServer, gen: Generator) => Promise<T>,
  nodeFlags: readonly string[] = [],
): Promise<T> {
  const server = await startServer(SERVERS[name], [], nodeFlags);
  let gen: Generator | null = null;
  try {
    gen = await Generator.start(
      pinning()?.generator ?? null,
      { host: '127.0.0.1', port: server.port, dialect: server.def.dialect },
      ctx.opts.threads,
    );
    return await fn(server, gen);
  } finally {
    await gen?.close();
    await stopServer(server);
  }
}

/** Runs `fn` once per selected server (or variant), recording errors instead of aborting the scenario. */
export async function perServer<T extends object, K extends string = ServerName>(
  ctx: Context,
  servers: readonly K[],
  fn: (name: K) => Promise<T>,
): Promise<Partial<Record<K, T | { error: string }>>> {
  const out: Partial<Record<K, T | { error: string }>> = {};
  for (const name of servers) {
    ctx.log(`  ${name} …`);
    try {
      out[name] = await fn(name);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      ctx.log(`  ${name} failed: ${message}`);
      out[name] = { error: message };
    }
  }
  return out;
}

export function requireConnected(c: ConnectResult, wanted: number): void {
  if (c.ok < wanted) throw new Error(`only ${c.ok}/${wanted} connections: ${c.errors.join('; ')}`);
}

/** Builds a row from per-server (or per-variant) outcomes, skipping errors. */
export function row<T extends object, K extends string = ServerName>(
  outcomes: Partial<Record<K, T | { error: string }>>,
  metric: string,
  unit: string,
  better: Row['better'],
  pick: (r: T) => number | null,
): Row {
  const values: Row['values'] = {};
  for (const [name, r] of Object.entries(outcomes) as [K, T | { error: string }][]) {
    values[name] = 'error' in r ? null : pick(r as T);
  }
  return { metric, unit, better, values };
}

export function result(
  name: string,
  title: string,
  params: ScenarioResult['params'],
  servers: ScenarioResult['servers'],
  rows: Row[],
  notes: string[] = [],
): ScenarioResult {
  return { name, title, params, servers, rows, notes };
}

export interface MeasuredRun extends RunResult {
  /** CPU used by the server and by the generator during the run, % of one core: who was the bottleneck. */
  serverCpuPercent: number;
  generatorCpuPercent: number;
  /** serverCpuPercent per server process, in the order the pids were given. */
  processCpuPercent: number[];
}

/** The closed-loop max-rate run shared by the fan-out scenarios: only the topology differs. */
export interface MaxRateShape {
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly payloadBytes: number;
  readonly numTopics: number;
  readonly totalSubs: number;
  readonly windowPerSub: number;
}

export function maxRatePlan(s: MaxRateShape): Omit<GenRun, 'cmd'> {
  return { ...s, mode: 'max', rate: 0, drainMs: 3000, fanout: s.totalSubs / s.numTopics, httpConnections: 0 };
}

/** `gen.run` plus the CPU both sides used meanwhile (server side: the sum over `server`'s processes). */
export async function measuredRun(server: RunningServer | readonly number[], gen: Generator, cmd: Omit<GenRun, 'cmd'>): Promise<MeasuredRun> {
  const pids = 'pid' in server ? [server.pid] : server;
  const t0 = performance.now();
  const s0 = pids.map(cpuSeconds);
  const g0 = cpuSeconds(gen.pid);
  const r = await gen.run(cmd);
  const wall = (performance.now() - t0) / 1000;
  const pct = (c: number): number => Math.round((c / wall) * 1000) / 10;
  const used = pids.map((pid, i) => cpuSeconds(pid) - (s0[i] as number));
  return {
    ...r,
    serverCpuPercent: pct(used.reduce((a, b) => a + b, 0)),
    generatorCpuPercent: pct(cpuSeconds(gen.pid) - g0),
    processCpuPercent: used.map(pct),
  };
}

/** Polls `/readyz` (503 until the broker connection is up) for up to 15 s. */
export async function waitReady(port: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const status = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    if (Date.now() > deadline) throw new Error(`node on port ${port} not ready after 15 s (last status ${status})`);
    await sleep(50);
  }
}
