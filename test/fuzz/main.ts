import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runFuzz } from './run';

/**
 * `npm run fuzz -- [--inputs N] [--seed S] [--lanes L] [--workers W]`: fuzzes a live gateway (default
 * 1,000,000 inputs; with --workers W > 1 the gateway runs `serve --workers W`) and writes the report to
 * test-artifacts/fuzz-<seed>.json. Exit 1 when an invariant failed.
 */
function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(process.argv[i + 1]);
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`--${name} needs a non-negative integer`);
  return v;
}

async function main(): Promise<void> {
  const workers = arg('workers', 1);
  const options = { inputs: arg('inputs', 1_000_000), seed: arg('seed', Date.now() % 2 ** 31), lanes: arg('lanes', 8), progress: (l: string) => console.log(l), extraFlags: workers > 1 ? ['--workers', String(workers)] : [] };
  console.log(`fuzzing ${options.inputs} inputs, seed ${options.seed}, ${options.lanes} lanes${workers > 1 ? `, --workers ${workers}` : ''}`);
  const report = await runFuzz(options);
  const dir = path.join(__dirname, '..', '..', '..', 'test-artifacts');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `fuzz-${options.seed}.json`);
  writeFileSync(file, JSON.stringify(report, null, 2));
  const mib = (b: number) => (b / 1048576).toFixed(1);
  console.log(
    `${report.inputs} inputs in ${(report.durationMs / 1000).toFixed(1)} s (${report.inputsPerSecond}/s), RSS ${mib(report.rssBefore)} -> ${mib(report.rssAfter)} MiB (peak ${mib(report.rssPeak)}), ` +
      `${report.failures.length} failure(s); report: ${file}`,
  );
  for (const f of report.failures) console.log('FAIL', f);
  process.exitCode = report.failures.length === 0 ? 0 : 1;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
