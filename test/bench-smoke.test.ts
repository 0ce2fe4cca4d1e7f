import { after, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { BenchReport } from '../bench/report/types';
import { SCENARIOS } from '../bench/scenarios';

/**
 * A tiny (`--quick`) run of each bench scenario: checks that the scripts still work end to end and
 * write well-formed results, not how fast anything is.
 */
const RUN = path.join(__dirname, '..', 'bench', 'run.js');
const TIMEOUT_MS = 120_000;
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'wsgate-bench-smoke-'));
const children = new Set<ChildProcess>();

after(() => {
  // run.js stops its own servers and generators on SIGTERM; this only covers a hung run.
  for (const c of children) if (c.pid !== undefined && c.exitCode === null) process.kill(c.pid, 'SIGTERM');
  fs.rmSync(out, { recursive: true, force: true });
});

// `fanout` runs every server (so every baseline's script is exercised); these multi-server scenarios
// run the two wsgate doors and raw uWS only, which keeps the smoke run short.
const FEWER_SERVERS = new Set(['latency', 'manytopics', 'idle']);

function runBench(scenario: string): Promise<{ code: number | null; output: string; dir: string }> {
  const dir = path.join(out, scenario);
  const servers = FEWER_SERVERS.has(scenario) ? ['--servers', 'wsgate,pusher,uws'] : [];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [RUN, '--quick', '--scenario', scenario, ...servers, '--out', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
    }, TIMEOUT_MS);
    child.on('exit', (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, output, dir });
    });
  });
}

function isNumberOrNull(v: unknown): boolean {
  return v === null || (typeof v === 'number' && Number.isFinite(v));
}

describe('bench smoke (--quick)', () => {
  for (const scenario of SCENARIOS) {
    it(`${scenario.name} writes well-formed results`, { timeout: TIMEOUT_MS + 10_000 }, async () => {
      const { code, output, dir } = await runBench(scenario.name);
      assert.equal(code, 0, output);
      const files = fs.readdirSync(dir);
      const json = files.find((f) => f.endsWith('-quick.json'));
      assert.ok(json, `no JSON in ${files.join(', ')}`);
      assert.ok(files.some((f) => f.endsWith('-quick.md')));
      const report = JSON.parse(fs.readFileSync(path.join(dir, json), 'utf8')) as BenchReport;
      assert.equal(report.version, 1);
      assert.equal(report.quick, true);
      assert.ok(report.machine.cores >= 1 && report.machine.node.startsWith('v'));
      assert.equal(report.scenarios.length, 1);
      const s = report.scenarios[0];
      assert.equal(s.name, scenario.name);
      for (const [name, outcome] of Object.entries(s.servers)) {
        assert.ok(!(typeof outcome === 'object' && outcome !== null && 'error' in outcome), `${name}: ${JSON.stringify(outcome)}`);
      }
      for (const row of s.rows) {
        assert.ok(typeof row.metric === 'string' && (row.better === 'higher' || row.better === 'lower'));
        for (const v of Object.values(row.values)) assert.ok(isNumberOrNull(v), `${row.metric}: ${v}`);
      }
      if (scenario.name === 'crossnode') {
        // Real nats-server and redis-server: every column measured, nothing lost on the way through a broker.
        assert.equal(s.ratioBase, 'single node (memory)');
        assert.deepEqual(Object.keys(s.servers), ['single node (memory)', 'NATS A+B', 'Redis A+B', 'NATS JetStream A+B', 'NATS A only', 'Redis A only']);
        const lost = s.rows.find((r) => r.metric === 'lost');
        assert.ok(lost !== undefined && Object.values(lost.values).every((v) => v === 0), JSON.stringify(lost));
        assert.ok(s.rows.every((r) => Object.values(r.values).every((v) => v !== null)), 'a case produced no figures');
      }
      if (scenario.name === 'brokercost') {
        // One broker subscription per topic the node holds, whichever broker.
        const subs = s.rows.find((r) => r.metric.startsWith('broker subscriptions for'));
        assert.deepEqual(subs?.values, { NATS: s.params.topics, Redis: s.params.topics, 'NATS JetStream': s.params.topics });
        const conns = s.rows.find((r) => r.metric === 'broker connections held by the node');
        assert.deepEqual(conns?.values, { NATS: 1, Redis: 2, 'NATS JetStream': 1 });
      }
      if (scenario.name === 'latency') {
        const svg = fs.readFileSync(path.join(dir, json.replace('.json', '.svg')), 'utf8');
        assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"[\s\S]*<\/svg>\n$/);
      }
    });
  }
});
