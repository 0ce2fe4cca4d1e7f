import { Generator } from '../gen/handle';
import { ConnectResult, GenRun, RunResult } from '../gen/control';
import { cpuSeconds, pinning } from '../lib/procs';
import { RunningServer, SERVERS, ServerName, startServer, stopServer } from '../lib/servers';
import { Context, Row, ScenarioResult } from './types';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts the server and a generator aimed at it, runs `fn`, and always stops both (by PID). */
export async function session<T>(
  ctx: Context,
  name: ServerName,
  fn: (server: RunningServer, gen: Generator) => Promise<T>,
): Promise<T> {
  const server = await startServer(SERVERS[name]);
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

/** Runs `fn` once per selected server, recording errors instead of aborting the scenario. */
export async function perServer<T extends object>(
  ctx: Context,
  servers: readonly ServerName[],
  fn: (name: ServerName) => Promise<T>,
): Promise<Partial<Record<ServerName, T | { error: string }>>> {
  const out: Partial<Record<ServerName, T | { error: string }>> = {};
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

/** Builds a row from per-server outcomes, skipping errors. */
export function row<T extends object>(
  outcomes: Partial<Record<ServerName, T | { error: string }>>,
  metric: string,
  unit: string,
  better: Row['better'],
  pick: (r: T) => number | null,
): Row {
  const values: Row['values'] = {};
  for (const [name, r] of Object.entries(outcomes) as [ServerName, T | { error: string }][]) {
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
}

/** `gen.run` plus the CPU both sides used meanwhile. */
export async function measuredRun(server: RunningServer, gen: Generator, cmd: Omit<GenRun, 'cmd'>): Promise<MeasuredRun> {
  const t0 = performance.now();
  const s0 = cpuSeconds(server.pid);
  const g0 = cpuSeconds(gen.pid);
  const r = await gen.run(cmd);
  const wall = (performance.now() - t0) / 1000;
  const pct = (c: number): number => Math.round((c / wall) * 100);
  return { ...r, serverCpuPercent: pct(cpuSeconds(server.pid) - s0), generatorCpuPercent: pct(cpuSeconds(gen.pid) - g0) };
}
