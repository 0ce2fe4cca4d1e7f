import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

const CHURN = path.join(__dirname, 'fixtures', 'heap-meter-churn.js');

interface ChurnResult {
  method: string;
  cycles: number;
  warmup: number;
  rssStart: number;
  rssEnd: number;
  allocated: number;
  garbageBytes: number;
  collections: number;
}

describe('heap allocation meter memory', () => {
  // Regression guard for issue 16: every sample stops a V8 GCProfiler, and Node keeps a stopped one
  // appending ~5 KB per GC until a full GC collects it. The old meter grew RSS by ~170 MB in this
  // run (130 samples, ~500 minor GCs, no full GC); a bounded meter stays within a few MB.
  it('keeps RSS flat over 150 samples with minor GCs between them, and still measures', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--max-semi-space-size=1', CHURN, '150'], { timeout: 60_000 });
    const r = JSON.parse(stdout) as ChurnResult;
    const growth = r.rssEnd - r.rssStart;
    assert.ok(growth < 16 * 1024 * 1024, `RSS grew ${(growth / 1048576).toFixed(1)} MB over ${r.cycles - r.warmup} samples (${r.method}, ${r.collections} collections)`);
    assert.ok(r.allocated >= r.garbageBytes, `measured ${r.allocated} >= the ${r.garbageBytes} B of garbage made`);
    if (r.method === 'gc-profiler') assert.ok(r.collections > 0, 'the stopped profilers were collected');
  });
});
