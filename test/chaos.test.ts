import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { printReport } from './chaos/main';
import { runChaos } from './chaos/run';

/**
 * A short chaos run per broker (issue 20): 3 gateway processes, SIGKILLs and restarts, broker restarts
 * and partitions through fault proxies, then every invariant must hold. The long run is
 * `npm run chaos -- --minutes N --seed S`; a failing seed here reruns there with the same schedule.
 */
const SECONDS = 10;

// Redis and NATS side by side: each run has its own broker, nodes, proxies and trail.
describe('chaos run', { concurrency: 2 }, () => {
  for (const kind of ['redis', 'nats'] as const) {
    describe(`via ${kind}`, { timeout: 120_000, concurrency: 1 }, () => {
      it(`${SECONDS} s of faults, then every invariant holds`, async () => {
        const seed = Number(process.env.CHAOS_SEED ?? Date.now() % 100_000);
        const lines: string[] = [];
        // Faults every 0.5–1.5 s (the long run: 1.5–4 s), so that a short run still has several.
        const report = await runChaos({ kind, ms: SECONDS * 1000, seed, log: (l) => lines.push(l), pauseMs: [500, 1500], minFaults: 2 });
        printReport(report, (l) => lines.push(l));
        for (const l of lines) console.log(`# ${l}`);
        const failed = report.invariants.filter((i) => !i.ok);
        assert.deepEqual(failed, [], `seed ${seed}: ${failed.map((i) => `${i.name}: ${i.detail}`).join('; ')}`);
        assert.ok(Object.values(report.faults).reduce((a, b) => a + b, 0) >= 2, 'faults were injected');
      });
    });
  }
});
