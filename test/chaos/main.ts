import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type ChaosReport, runChaos } from './run';

/**
 * `npm run chaos -- [--minutes N] [--seed S] [--brokers redis,nats]`: a chaos run of N minutes (default 2)
 * split between the brokers (3 gateway nodes each), then the invariants, printed and written to
 * test-artifacts/chaos-<seed>.json. Exit 1 when an invariant failed.
 */
function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? def : (process.argv[i + 1] ?? def);
}

export function printReport(report: ChaosReport, log: (line: string) => void): void {
  log(
    `[${report.kind}] seed ${report.seed}, ${report.seconds} s: faults ${JSON.stringify(report.faults)}; ${report.published} publishes, ${report.acked} acknowledged; ` +
      `${report.delivered} deliveries, ${report.gaps} gap events; converged ${report.convergedMs} ms after the last fault; max RSS ${report.maxRssMiB.join('/')} MiB; ` +
      `${report.takenOver} occupancy webhooks sent for dead nodes from their outbox (at least: sampled)`,
  );
  for (const i of report.invariants) log(`  ${i.ok ? 'PASS' : 'FAIL'} ${i.name}: ${i.detail}`);
}

async function main(): Promise<void> {
  const minutes = Number(arg('minutes', '2'));
  const seed = Number(arg('seed', String(Date.now() % 2 ** 31)));
  const brokers = arg('brokers', 'redis,nats').split(',') as ('redis' | 'nats')[];
  if (!(minutes > 0) || !Number.isSafeInteger(seed) || brokers.some((b) => b !== 'redis' && b !== 'nats')) throw new Error('usage: npm run chaos -- --minutes N --seed S [--brokers redis,nats]');
  const log = (l: string) => console.log(`${new Date().toISOString().slice(11, 19)} ${l}`);
  log(`chaos: ${minutes} min, seed ${seed}, brokers ${brokers.join(', ')}`);
  const reports: ChaosReport[] = [];
  for (const kind of brokers) {
    const report = await runChaos({ kind, ms: (minutes * 60_000) / brokers.length, seed, log });
    printReport(report, log);
    reports.push(report);
  }
  const dir = path.join(__dirname, '..', '..', '..', 'test-artifacts');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `chaos-${seed}.json`), JSON.stringify(reports, null, 2));
  const failed = reports.flatMap((r) => r.invariants.filter((i) => !i.ok).map((i) => `${r.kind}: ${i.name}`));
  log(failed.length === 0 ? 'all invariants hold' : `FAILED: ${failed.join('; ')}`);
  process.exitCode = failed.length === 0 ? 0 : 1;
}

if (require.main === module) {
  // Exits when done: a run that failed midway may leave client timers behind.
  main().then(
    () => process.exit(),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
