import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runFuzz } from './fuzz/run';

// The short form of `npm run fuzz` (which runs 1,000,000 inputs): a fixed seed, so a failure reproduces
// with `npm run fuzz -- --inputs 20000 --seed 20261129`.
describe('fuzz (quick)', { timeout: 180_000 }, () => {
  it('20,000 generated and mutated inputs: the gateway lives, bystanders get every message once in order, prototypes clean, RSS bounded', async () => {
    const report = await runFuzz({ inputs: 20_000, seed: 20261129, lanes: 32, progress: null });
    assert.deepEqual(report.failures, [], `failures; last inputs:\n${report.lastInputs.join('\n')}`);
    assert.equal(report.inputs, 20_000);
    // Every kind of input was exercised, and some of each reached the code behind the parsers.
    for (const kind of ['command', 'frames', 'http', 'upgrade'] as const) assert.ok(report.byKind[kind] > 500, `${kind}: ${report.byKind[kind]}`);
    assert.ok((report.httpStatuses['200'] ?? 0) > 0, 'some fuzzed publishes were accepted');
    assert.ok(report.upgradesAccepted > 0, 'some fuzzed upgrades were accepted');
    assert.ok(report.bystanderPublished > 10);
  });
});
