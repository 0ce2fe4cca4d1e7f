// deploy/ observability against the real thing: every metric name that the dashboard and the rules
// read exists (in docs/metrics.md, and in a running gateway's /metrics), promtool accepts the
// exposition, and a real Prometheus loaded with the shipped scrape config and rules scrapes a
// gateway under a little traffic and evaluates the recording rules.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Registry, collectDefaultMetrics } from 'prom-client';
import WebSocket from 'ws';
import YAML from 'yaml';
import { missingTool } from './helpers/tools';

const ROOT = path.join(__dirname, '..', '..');
const DEPLOY = path.join(ROOT, 'deploy');
const PROMTOOL = '/usr/bin/promtool';
const PROMETHEUS = '/usr/bin/prometheus';
const MAIN = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');

/** The live checks need both binaries of Debian's prometheus package. */
const liveSkip = missingTool(PROMETHEUS, 'prometheus') || missingTool(PROMTOOL, 'prometheus');

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

// ---------------------------------------------------------------------------------------------
// PromQL expressions used by deploy/ and the metric names inside them.

interface Expr {
  readonly where: string;
  readonly expr: string;
}

function ruleGroups(): Record<string, unknown>[] {
  const dir = path.join(DEPLOY, 'prometheus', 'rules');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yml'))
    .flatMap((f) => asArray((YAML.parse(readFileSync(path.join(dir, f), 'utf8')) as unknown as Record<string, unknown>).groups))
    .filter(isRecord);
}

function ruleExprs(): Expr[] {
  return ruleGroups().flatMap((g) =>
    asArray(g.rules)
      .filter(isRecord)
      .map((r) => ({ where: `rule ${str(r.record) || str(r.alert)}`, expr: str(r.expr) })),
  );
}

const recordedNames = (): Set<string> =>
  new Set(ruleGroups().flatMap((g) => asArray(g.rules).filter(isRecord).map((r) => str(r.record)).filter((n) => n !== '')));

function loadDashboard(): Record<string, unknown> {
  const d: unknown = JSON.parse(readFileSync(path.join(DEPLOY, 'grafana', 'wsgate-dashboard.json'), 'utf8'));
  assert.ok(isRecord(d));
  return d;
}

function dashboardExprs(): Expr[] {
  const d = loadDashboard();
  const panels = asArray(d.panels).filter(isRecord);
  const out: Expr[] = panels.flatMap((p) =>
    asArray(p.targets)
      .filter(isRecord)
      .map((t) => ({ where: `panel "${str(p.title)}"`, expr: str(t.expr) })),
  );
  // Template variables: label_values(<series selector>, label) names a metric too.
  const templating = isRecord(d.templating) ? asArray(d.templating.list).filter(isRecord) : [];
  for (const v of templating) {
    const m = /label_values\(\s*([^,]+),/.exec(str(v.definition));
    if (m) out.push({ where: `variable $${str(v.name)}`, expr: m[1] });
  }
  return out;
}

const PROMQL_WORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);

/** Metric names referenced by a PromQL expression (Grafana variables allowed). */
function metricNames(expr: string): Set<string> {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ') // label values, string arguments
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges and subqueries, incl. $__rate_interval
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // label lists
    .replace(/\boffset\s+-?\w+/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ');
  const names = new Set<string>();
  // Not preceded by a word character or dot (the "e3" of 1e3), not followed by "(" (functions); the
  // lookahead also refuses a shorter prefix of a function name.
  for (const m of stripped.matchAll(/(?<![\w.:])([A-Za-z_:][\w:]*)(?![\w:]|\s*\()/g)) {
    if (!PROMQL_WORDS.has(m[1].toLowerCase())) names.add(m[1]);
  }
  return names;
}

/** Exposition names of a family: a histogram is read as _bucket, _sum and _count. */
function sampleNames(family: string, type: string): string[] {
  if (type === 'histogram') return [family, `${family}_bucket`, `${family}_sum`, `${family}_count`];
  if (type === 'summary') return [family, `${family}_sum`, `${family}_count`];
  return [family];
}

/** Names promised by docs/metrics.md, the contract the gateway is written against. */
function documentedNames(): Set<string> {
  const names = new Set<string>();
  for (const line of readFileSync(path.join(ROOT, 'docs', 'metrics.md'), 'utf8').split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 4) continue;
    for (const m of cells[1].matchAll(/`(wsgate_\w+)`/g)) sampleNames(m[1], cells[2]).forEach((n) => names.add(n));
  }
  return names;
}

/** Names in a Prometheus text exposition, from its # TYPE lines and samples. */
function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)/.exec(line);
    if (t) sampleNames(t[1], t[2]).forEach((n) => names.add(n));
    const s = /^([A-Za-z_:][\w:]*)[{ ]/.exec(line);
    if (s) names.add(s[1]);
  }
  return names;
}

/** Names used by deploy/ that no known source provides. `up` is Prometheus's own per-target series. */
function unknownNames(known: Set<string>): string[] {
  const provided = new Set([...known, ...recordedNames(), 'up']);
  const missing: string[] = [];
  for (const { where, expr } of [...ruleExprs(), ...dashboardExprs()]) {
    for (const n of metricNames(expr)) if (!provided.has(n)) missing.push(`${n} (${where})`);
  }
  return missing;
}

describe('deploy/ metric names (static)', () => {
  it('the name extractor reads PromQL as intended', () => {
    assert.deepEqual(
      [...metricNames('histogram_quantile(0.99, sum by (job, le) (rate(a_bucket{job=~"$job",x="y z"}[$__rate_interval]))) > 1e3')],
      ['a_bucket'],
    );
    assert.deepEqual([...metricNames('x:y:z > 1.5 * quantile_over_time(0.5, x:y:z[1d] offset 1d) and on (i) b unless c')], ['x:y:z', 'b', 'c']);
  });

  it('rules and dashboard contain expressions', () => {
    assert.ok(ruleExprs().length >= 20);
    assert.ok(dashboardExprs().length >= 30);
    for (const e of [...ruleExprs(), ...dashboardExprs()]) assert.notEqual(e.expr.trim(), '', e.where);
  });

  it('every name is in docs/metrics.md or prom-client default metrics', async () => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    const defaults = (await registry.getMetricsAsJSON()).flatMap((m) => sampleNames(m.name, String(m.type)));
    assert.deepEqual(unknownNames(new Set([...documentedNames(), ...defaults])), []);
  });
});

// ---------------------------------------------------------------------------------------------
// A running gateway and a real Prometheus.

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls until `check` returns a value that is not undefined. */
async function poll<T>(what: string, ms: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  let last = '';
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = String(e);
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what} ${last}`);
    await sleep(250);
  }
}

interface Proc {
  readonly child: ChildProcess;
  readonly output: () => string;
}

function start(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Proc {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-20_000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { child, output: () => out };
}

/** SIGTERM by PID, SIGKILL if it has not exited within `graceMs`. */
async function stop(p: Proc | undefined, graceMs = 5000): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = once(p.child, 'exit');
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

interface Sample {
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** An instant query against Prometheus's HTTP API. */
async function query(promPort: number, q: string): Promise<Sample[]> {
  const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`);
  const body: unknown = await res.json();
  if (!isRecord(body) || body.status !== 'success' || !isRecord(body.data)) throw new Error(`query ${q}: ${JSON.stringify(body)}`);
  return asArray(body.data.result)
    .filter(isRecord)
    .map((r) => ({
      labels: Object.fromEntries(Object.entries(isRecord(r.metric) ? r.metric : {}).map(([k, v]) => [k, str(v)])),
      value: Number(asArray(r.value)[1]),
    }));
}

const positive = (samples: Sample[]) => (samples.length > 0 && samples.every((s) => s.value > 0) ? samples : undefined);

describe('deploy/ against a running gateway and a real Prometheus', () => {
  const CLIENTS = 3;
  let gw: Proc | undefined;
  let prom: Proc | undefined;
  let gwPort = 0;
  let promPort = 0;
  let tmp = '';
  let publisher: NodeJS.Timeout | undefined;
  const clients: WebSocket[] = [];
  const received: number[] = [];

  const publish = async (data: string) => {
    const res = await fetch(`http://127.0.0.1:${gwPort}/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ topic: 'x', data }),
    });
    assert.equal(res.status, 200, await res.text());
  };

  before(async () => {
    if (liveSkip) return;
    assert.ok(existsSync(MAIN), `${MAIN} is missing: run "npx tsc -p ." first`);

    gwPort = await freePort();
    gw = start(process.execPath, [MAIN, 'serve', '--host', '127.0.0.1', '--port', String(gwPort), '--client-publish', '--api-insecure', '--log-level', 'warn']);
    await poll('gateway /readyz', 15_000, async () => ((await fetch(`http://127.0.0.1:${gwPort}/readyz`)).status === 200 ? true : undefined)).catch(
      (e: unknown) => {
        throw new Error(`${String(e)}\ngateway output:\n${gw?.output() ?? ''}`);
      },
    );

    for (let i = 0; i < CLIENTS; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${gwPort}/ws?topics=x`);
      received.push(0);
      ws.on('message', () => received[i]++);
      clients.push(ws);
      await once(ws, 'open');
    }
    await publish('hi');
    await poll('deliveries to every client', 5000, async () => (received.every((n) => n >= 1) ? true : undefined));
    // A publish a second keeps rate() > 0 while Prometheus scrapes; bounded so it stops by itself.
    let ticks = 0;
    publisher = setInterval(() => {
      if (++ticks > 180) clearInterval(publisher);
      else publish('hi').catch(() => clearInterval(publisher));
    }, 1000);

    // The shipped config and rules, with only the scrape target replaced. Rule files are copied
    // beside the config so its relative rule_files glob resolves as it does in the compose stack.
    tmp = mkdtempSync(path.join(tmpdir(), 'wsgate-prom-'));
    const config = YAML.parse(readFileSync(path.join(DEPLOY, 'prometheus', 'prometheus.yml'), 'utf8')) as unknown;
    assert.ok(isRecord(config));
    const job = asArray(config.scrape_configs).filter(isRecord).find((j) => j.job_name === 'wsgate');
    assert.ok(job, 'scrape config has a job named wsgate');
    const statics = asArray(job.static_configs).filter(isRecord);
    assert.equal(statics.length, 1);
    statics[0].targets = [`127.0.0.1:${gwPort}`];
    // Only the pace changes: the shipped 15 s would make the scrape and rule checks wait a minute.
    assert.ok(isRecord(config.global));
    Object.assign(config.global, { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' });
    writeFileSync(path.join(tmp, 'prometheus.yml'), YAML.stringify(config));
    cpSync(path.join(DEPLOY, 'prometheus', 'rules'), path.join(tmp, 'rules'), { recursive: true });

    promPort = await freePort();
    prom = start(PROMETHEUS, [
      `--config.file=${path.join(tmp, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(tmp, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      '--log.level=warn',
    ]);
    await poll('Prometheus /-/ready', 30_000, async () => ((await fetch(`http://127.0.0.1:${promPort}/-/ready`)).status === 200 ? true : undefined)).catch(
      (e: unknown) => {
        throw new Error(`${String(e)}\nprometheus output:\n${prom?.output() ?? ''}`);
      },
    );
  });

  after(async () => {
    clearInterval(publisher);
    for (const ws of clients) ws.terminate();
    // No connections left, so the gateway's drain has nothing to wait for.
    await stop(prom);
    await stop(gw);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('promtool check metrics reports nothing on the whole live exposition', { skip: liveSkip }, async () => {
    const text = await (await fetch(`http://127.0.0.1:${gwPort}/metrics`)).text();
    const all = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(`${all.stdout}${all.stderr}`.trim(), '', 'promtool check metrics has remarks');
    assert.equal(all.status, 0);
  });

  it('every metric name the dashboard and rules use is exposed by the gateway', { skip: liveSkip }, async () => {
    const text = await (await fetch(`http://127.0.0.1:${gwPort}/metrics`)).text();
    assert.deepEqual(unknownNames(exposedNames(text)), []);
  });

  it('every name in docs/metrics.md is exposed by the gateway', { skip: liveSkip }, async () => {
    const exposed = exposedNames(await (await fetch(`http://127.0.0.1:${gwPort}/metrics`)).text());
    assert.deepEqual([...documentedNames()].filter((n) => !exposed.has(n)), []);
  });

  it('Prometheus scrapes the gateway: up == 1', { skip: liveSkip }, async () => {
    const up = await poll('up{job="wsgate"} == 1', 60_000, async () => positive(await query(promPort, 'up{job="wsgate"} == 1')));
    assert.equal(up[0].labels.instance, `127.0.0.1:${gwPort}`);
  });

  it('Prometheus sees non-zero delivery counters', { skip: liveSkip }, async () => {
    const s = await poll('wsgate_deliveries_total > 0', 60_000, async () => positive(await query(promPort, 'wsgate_deliveries_total{job="wsgate"}')));
    assert.ok(s[0].value >= CLIENTS);
  });

  it('recording rules are evaluated', { skip: liveSkip }, async () => {
    const conns = await poll('job:wsgate_connections:sum', 60_000, async () => positive(await query(promPort, 'job:wsgate_connections:sum{job="wsgate"}')));
    assert.equal(conns[0].value, CLIENTS);
    // A rate needs two scrapes in its window.
    await poll('job:wsgate_deliveries:rate1m > 0', 90_000, async () => positive(await query(promPort, 'job:wsgate_deliveries:rate1m{job="wsgate"}')));
  });

  it('every rule loads and evaluates without error', { skip: liveSkip }, async () => {
    const unhealthy = await poll('every rule group evaluated', 60_000, async () => {
      const body: unknown = await (await fetch(`http://127.0.0.1:${promPort}/api/v1/rules`)).json();
      const groups = isRecord(body) && isRecord(body.data) ? asArray(body.data.groups).filter(isRecord) : [];
      const rules = groups.flatMap((g) => asArray(g.rules).filter(isRecord));
      if (groups.length < 2 || rules.some((r) => str(r.lastEvaluation).startsWith('0001-'))) return undefined;
      return rules.filter((r) => r.health !== 'ok').map((r) => `${str(r.name)}: ${str(r.health)} ${str(r.lastError)}`);
    });
    assert.deepEqual(unhealthy, []);
  });

  it('every dashboard query is valid PromQL to this Prometheus', { skip: liveSkip }, async () => {
    const failures: string[] = [];
    for (const { where, expr } of dashboardExprs()) {
      const q = expr.replaceAll('$__rate_interval', '1m').replaceAll('$job', 'wsgate').replaceAll('$instance', '.+');
      const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`);
      if (res.status !== 200) failures.push(`${where}: ${q}: ${await res.text()}`);
    }
    assert.deepEqual(failures, []);
  });

  it('the container healthcheck script passes against /healthz and fails on a closed port', { skip: liveSkip }, async () => {
    const script = path.join(DEPLOY, 'healthcheck.cjs');
    const ok = spawnSync(process.execPath, [script], { env: { ...process.env, WSGATE_PORT: String(gwPort) } });
    assert.equal(ok.status, 0);
    const closed = spawnSync(process.execPath, [script], { env: { ...process.env, WSGATE_PORT: String(await freePort()) } });
    assert.equal(closed.status, 1);
  });
});
