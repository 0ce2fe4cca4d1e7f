/**
 * `npm run bench [-- --scenario <name>[,<name>]] [--quick] [--servers wsgate,uws,ws,socketio]
 *                [--threads N] [--window N] [--idle-conns N | --idle-100k] [--cpu-prof] [--no-pin] [--out <dir>]
 *                [--profile steady|churn] [--duration <s>]` (the last two: soak only)
 * Runs the benchmark scenarios and writes bench/results/<date>-<host>.{json,md,svg}.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { argFlag, argNumber, argValue } from './lib/cli';
import { ALL_SERVERS, ServerName, serverNodeFlags, wsgateAvailable } from './lib/servers';
import { soketiBin } from './lib/soketi';
import { disablePinning, killAllChildren, openFilesLimit, pinningLabel } from './lib/procs';
import { writeReport } from './report/write';
import { SCENARIOS } from './scenarios';
import { SOAK_PROFILES, SoakProfile } from './scenarios/soak';
import { BenchOptions, Context, ScenarioResult } from './scenarios/types';

function soakProfile(v: string | undefined): SoakProfile {
  if (v === undefined) return 'churn';
  if (!(SOAK_PROFILES as readonly string[]).includes(v)) throw new Error(`--profile expects ${SOAK_PROFILES.join(' or ')}, got ${v}`);
  return v as SoakProfile;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const quick = argFlag(argv, 'quick');
  if (argFlag(argv, 'no-pin')) disablePinning();
  const wanted = argValue(argv, 'scenario')?.split(',');
  const unknown = wanted?.filter((w) => !SCENARIOS.some((s) => s.name === w)) ?? [];
  if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  // A quick run (the test suite's smoke run) leaves Soketi out unless named: it installs from the network.
  let servers = (argValue(argv, 'servers')?.split(',') as ServerName[] | undefined) ?? ALL_SERVERS.filter((s) => !quick || s !== 'soketi');
  const notes: string[] = [];
  const soketi = servers.includes('soketi') ? soketiBin() : null;
  if (soketi instanceof Error) {
    servers = servers.filter((s) => s !== 'soketi');
    notes.push(`Soketi left out: ${soketi.message}`);
  }
  if (servers.some((s) => s === 'wsgate' || s === 'pusher') && !wsgateAvailable()) {
    servers = servers.filter((s) => s !== 'wsgate' && s !== 'pusher');
    notes.push('wsgate was not built (dist/src/cli/main.js missing): baselines only.');
  }
  if (argFlag(argv, 'cpu-prof')) {
    const dir = path.resolve(argValue(argv, 'out') ?? path.join(__dirname, '..', '..', 'bench', 'results'), 'prof');
    serverNodeFlags.push('--cpu-prof', `--cpu-prof-dir=${dir}`);
  }
  const opts: BenchOptions = {
    quick,
    servers,
    threads: argNumber(argv, 'threads', 3),
    window: argNumber(argv, 'window', 32),
    idleConns: argFlag(argv, 'idle-100k') ? 100_000 : argNumber(argv, 'idle-conns', quick ? 200 : 20_000),
    soakProfile: soakProfile(argValue(argv, 'profile')),
    durationSeconds: argValue(argv, 'duration') === undefined ? null : argNumber(argv, 'duration', 0),
  };
  const ctx: Context = {
    opts,
    generatorCapacity: null,
    log: (m) => console.log(m),
  };
  const selected = SCENARIOS.filter((s) => (wanted ? wanted.includes(s.name) : s.inDefault));
  const started = new Date();
  const results: ScenarioResult[] = [];
  for (const s of selected) {
    console.log(`▶ ${s.name}: ${s.title}`);
    const t0 = Date.now();
    const r = await s.run(ctx);
    console.log(`  done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    results.push(r);
  }
  // A run of chosen scenarios is named after them, so it does not overwrite the day's suite report.
  const suffix = wanted ? `-${wanted.join('+')}${wanted.includes('soak') ? `-${opts.soakProfile}` : ''}` : '';
  const files = writeReport(argValue(argv, 'out') ?? path.join(__dirname, '..', '..', 'bench', 'results'), suffix, {
    version: 1,
    date: started.toISOString(),
    host: os.hostname(),
    command: `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`,
    quick,
    machine: {
      cpu: os.cpus()[0]?.model ?? 'unknown',
      cores: os.cpus().length,
      memoryBytes: os.totalmem(),
      kernel: `${os.type()} ${os.release()}`,
      node: process.version,
      openFilesLimit: openFilesLimit(),
    },
    pinning: pinningLabel(),
    generatorThreads: opts.threads,
    generatorCapacity: ctx.generatorCapacity,
    servers,
    notes,
    durationSeconds: Math.round((Date.now() - started.getTime()) / 1000),
    scenarios: results,
  });
  console.log(`results: ${files.join(', ')}`);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAllChildren();
    process.exit(130);
  });
}

main().catch((err: Error) => {
  killAllChildren();
  console.error(err.stack ?? err.message);
  process.exit(1);
});
