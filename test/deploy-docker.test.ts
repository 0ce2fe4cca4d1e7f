// deploy/ container pieces, checked without a Docker engine (none runs in CI): the Dockerfile's
// structure and its ignore file, `docker-compose config` on the compose file plus its wiring, and
// the Grafana dashboard and provisioning.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import YAML from 'yaml';
import { loadConfig } from '../src/config/load';
import { openApiRefusal } from '../src/guard/api-exposure';
import { missingTool } from './helpers/tools';

const ROOT = path.join(__dirname, '..', '..');
const DEPLOY = path.join(ROOT, 'deploy');
const DOCKER_COMPOSE = '/usr/bin/docker-compose';

type Obj = Record<string, unknown>;
const isRecord = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const rec = (v: unknown, what: string): Obj => {
  assert.ok(isRecord(v), `${what} is an object`);
  return v;
};
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);

interface Instruction {
  readonly op: string;
  readonly args: string;
}

/** Dockerfile instructions per stage, continuation lines joined, comments dropped. */
function dockerfileStages(): Instruction[][] {
  const text = readFileSync(path.join(DEPLOY, 'Dockerfile'), 'utf8')
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ');
  const stages: Instruction[][] = [[]];
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z]+)\s+(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === 'FROM') stages.push([]);
    stages[stages.length - 1].push({ op: m[1], args: m[2].trim() });
  }
  return stages;
}

const stages = dockerfileStages();
const preamble = stages[0];
const built = stages.slice(1);
const final = built[built.length - 1];
const ops = (stage: Instruction[], op: string) => stage.filter((i) => i.op === op).map((i) => i.args);

/** ENV of the final stage (KEY=value pairs). */
function imageEnv(): Record<string, string> {
  return Object.fromEntries(ops(final, 'ENV').flatMap((a) => [...a.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1], m[2]])));
}

function loadCompose(): Obj {
  // merge: the gateway services share one anchor (<<: *gateway).
  return rec(YAML.parse(readFileSync(path.join(DEPLOY, 'docker-compose.yml'), 'utf8'), { merge: true }), 'compose');
}

describe('deploy/Dockerfile', () => {
  it('is multi-stage on a Debian trixie Node 24 image (glibc >= 2.38 for uWebSockets.js)', () => {
    assert.ok(built.length >= 3, 'build, deps and runtime stages');
    const arg = ops(preamble, 'ARG').find((a) => a.startsWith('NODE_IMAGE='));
    assert.equal(arg, 'NODE_IMAGE=node:24-trixie-slim');
    for (const s of built) assert.match(s[0].args, /^\$\{NODE_IMAGE\}( AS \w+)?$/);
  });

  it('ships production dependencies only and the compiled output', () => {
    const runs = built.map((s) => ops(s, 'RUN').join('\n'));
    const depsStage = built.findIndex((s) => /\bAS deps$/.test(s[0].args));
    assert.match(runs[depsStage], /npm ci --omit=dev/);
    assert.match(runs[built.findIndex((s) => /\bAS build$/.test(s[0].args))], /npm run build/);
    assert.equal(runs[built.length - 1], '', 'the runtime stage installs nothing');
    const copies = ops(final, 'COPY');
    assert.ok(copies.includes('--from=deps /app/node_modules ./node_modules'));
    assert.ok(copies.includes('--from=build /app/dist ./dist'));
    const scripts = rec(rec(JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')), 'package.json').scripts, 'scripts');
    assert.match(String(scripts.build), /^tsc -p \. /, 'the build stage relies on "npm run build" compiling the project');
  });

  it('runs as a numeric non-root user', () => {
    const user = ops(final, 'USER');
    assert.equal(user.length, 1);
    assert.match(user[0], /^[1-9]\d*(:\d+)?$/);
  });

  it('has a HEALTHCHECK on /healthz, STOPSIGNAL SIGTERM and the production command', () => {
    const hc = ops(final, 'HEALTHCHECK');
    assert.equal(hc.length, 1);
    assert.match(hc[0], /CMD \["node", "deploy\/healthcheck\.cjs"\]/);
    assert.match(readFileSync(path.join(DEPLOY, 'healthcheck.cjs'), 'utf8'), /path: '\/healthz'/);
    assert.deepEqual(ops(final, 'STOPSIGNAL'), ['SIGTERM']);
    assert.deepEqual(ops(final, 'ENTRYPOINT'), ['["node", "dist/src/cli/main.js"]']);
    assert.deepEqual(ops(final, 'CMD'), ['["serve"]']);
  });

  it('its environment is valid gateway config, with the drain of the compose and Kubernetes files', () => {
    const env = imageEnv();
    const gatewayEnv = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('WSGATE_')));
    const config = loadConfig({ argv: [], env: gatewayEnv });
    assert.equal(config.host, '0.0.0.0');
    assert.equal(openApiRefusal(config), null, 'the image starts: its API is on a loopback admin port');
    assert.equal(config.adminHost, '127.0.0.1');
    assert.equal(config.drainWindow, 10_000);
    assert.equal(config.drainTimeout, 25_000);
    const k8s = readFileSync(path.join(DEPLOY, 'k8s', 'kustomization.yaml'), 'utf8');
    assert.ok(k8s.includes(`WSGATE_DRAIN_WINDOW=${env.WSGATE_DRAIN_WINDOW}`) && k8s.includes(`WSGATE_DRAIN_TIMEOUT=${env.WSGATE_DRAIN_TIMEOUT}`));
  });

  it('every COPY source exists and is let through by Dockerfile.dockerignore', () => {
    const ignore = readFileSync(path.join(DEPLOY, 'Dockerfile.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    assert.equal(ignore[0], '*', 'an allow-list: everything excluded first');
    const allowed = ignore.slice(1).map((l) => {
      assert.ok(l.startsWith('!'), `only re-inclusions after "*": ${l}`);
      return l.slice(1).replace(/\/$/, '');
    });
    const sources = built.flatMap((s) => ops(s, 'COPY')).filter((a) => !a.startsWith('--from'));
    for (const copy of sources) {
      for (const src of copy.split(/\s+/).slice(0, -1)) {
        assert.ok(existsSync(path.join(ROOT, src)), `${src} exists`);
        assert.ok(allowed.some((a) => src === a || src.startsWith(`${a}/`)), `${src} is in the build context`);
      }
    }
  });
});

describe('deploy/docker-compose.yml', () => {
  it('docker-compose config accepts it', { skip: missingTool(DOCKER_COMPOSE, 'docker-compose') }, () => {
    const r = spawnSync(DOCKER_COMPOSE, ['-f', path.join(DEPLOY, 'docker-compose.yml'), 'config', '-q'], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  });

  const compose = loadCompose();
  const services = rec(compose.services, 'services');
  const gateways = Object.keys(services).filter((s) => s.startsWith('gateway-'));

  it('runs three gateways, NATS, Prometheus and Grafana', () => {
    assert.equal(gateways.length, 3);
    for (const s of ['nats', 'prometheus', 'grafana']) assert.ok(services[s], s);
  });

  it('publishes every port on 127.0.0.1 only', () => {
    for (const [name, svc] of Object.entries(services)) {
      for (const p of strings(rec(svc, name).ports)) assert.match(p, /^127\.0\.0\.1:\d+:\d+$/, `${name} port ${p}`);
    }
  });

  it('gateways build the image, share the broker and outlast their drain on stop', () => {
    for (const g of gateways) {
      const svc = rec(services[g], g);
      assert.equal(rec(svc.build, 'build').dockerfile, 'deploy/Dockerfile');
      const env = Object.fromEntries(Object.entries(rec(svc.environment, 'environment')).map(([k, v]) => [k, String(v)]));
      assert.equal(env.WSGATE_BROKER, 'nats://nats:4222');
      const config = loadConfig({ argv: [], env: { ...imageEnv(), ...env } });
      assert.equal(openApiRefusal(config), null, `${g} starts`);
      const grace = /^(\d+)s$/.exec(String(svc.stop_grace_period));
      assert.ok(grace, 'stop_grace_period in seconds');
      assert.ok(Number(grace[1]) * 1000 > config.drainTimeout, 'docker stop waits for the drain');
      assert.equal(svc.read_only, true);
    }
  });

  it('Prometheus scrapes exactly the gateway services, with the rules mounted', () => {
    const prom = rec(YAML.parse(readFileSync(path.join(DEPLOY, 'prometheus', 'prometheus.yml'), 'utf8')), 'prometheus.yml');
    const jobs = Array.isArray(prom.scrape_configs) ? prom.scrape_configs.map((j) => rec(j, 'job')) : [];
    const targets = jobs.flatMap((j) => (Array.isArray(j.static_configs) ? j.static_configs.flatMap((s) => strings(rec(s, 'static').targets)) : []));
    // /metrics is on the admin listener, opened to the compose network by the gateways' environment.
    const gatewayEnv = Object.fromEntries(Object.entries(rec(rec(services['gateway-1'], 'gateway-1').environment, 'environment')).map(([k, v]) => [k, String(v)]));
    const config = loadConfig({ argv: [], env: { ...imageEnv(), ...gatewayEnv } });
    assert.equal(config.adminHost, '0.0.0.0');
    assert.deepEqual(targets.sort(), gateways.map((g) => `${g}:${config.adminPort}`).sort());
    assert.ok(strings(rec(services.prometheus, 'prometheus').volumes).includes('./prometheus:/etc/prometheus:ro'));
  });

  it('Grafana gets the datasource and the dashboard from files that exist', () => {
    const volumes = strings(rec(services.grafana, 'grafana').volumes);
    for (const v of volumes) assert.ok(existsSync(path.join(DEPLOY, v.split(':')[0])), v);
    const dashMount = volumes.find((v) => v.startsWith('./grafana/wsgate-dashboard.json:'));
    assert.ok(dashMount);
    const provider = rec(YAML.parse(readFileSync(path.join(DEPLOY, 'grafana', 'provisioning', 'dashboards', 'wsgate.yml'), 'utf8')), 'provider');
    const providerPath = String(rec(rec((provider.providers as unknown[])[0], 'provider').options, 'options').path);
    assert.equal(path.posix.dirname(dashMount.split(':')[1]), providerPath);
    const ds = rec(YAML.parse(readFileSync(path.join(DEPLOY, 'grafana', 'provisioning', 'datasources', 'prometheus.yml'), 'utf8')), 'datasources');
    assert.equal(rec((ds.datasources as unknown[])[0], 'datasource').url, 'http://prometheus:9090');
  });
});

describe('deploy/grafana/wsgate-dashboard.json', () => {
  const dash = rec(JSON.parse(readFileSync(path.join(DEPLOY, 'grafana', 'wsgate-dashboard.json'), 'utf8')), 'dashboard');
  const panels = (Array.isArray(dash.panels) ? dash.panels : []).map((p) => rec(p, 'panel'));
  const graphs = panels.filter((p) => p.type !== 'row');
  const exprs = graphs.flatMap((p) => (Array.isArray(p.targets) ? p.targets.map((t) => String(rec(t, 'target').expr)) : []));

  it('has unique panel ids, non-overlapping positions, and queries the selectable datasource', () => {
    assert.equal(new Set(panels.map((p) => p.id)).size, panels.length);
    const cells = new Set<string>();
    for (const p of panels) {
      const g = rec(p.gridPos, 'gridPos');
      for (let x = Number(g.x); x < Number(g.x) + Number(g.w); x++) {
        for (let y = Number(g.y); y < Number(g.y) + Number(g.h); y++) {
          assert.ok(!cells.has(`${x},${y}`), `panel "${String(p.title)}" overlaps at ${x},${y}`);
          cells.add(`${x},${y}`);
        }
      }
      assert.ok(Number(g.x) + Number(g.w) <= 24, `panel "${String(p.title)}" fits the 24-column grid`);
    }
    for (const p of graphs) {
      assert.equal(rec(p.datasource, 'datasource').uid, '${datasource}', String(p.title));
      assert.ok(Array.isArray(p.targets) && p.targets.length > 0, String(p.title));
    }
  });

  it('covers connections, deliveries, bytes, latency percentiles, allocation, GC, event loop, slow consumers and broker', () => {
    const uses = (re: RegExp) => exprs.some((e) => re.test(e));
    assert.ok(uses(/\bwsgate_connections\b/), 'connections');
    assert.ok(uses(/\bwsgate_deliveries_total\b/), 'deliveries/s');
    assert.ok(uses(/\bwsgate_sent_bytes_total\b/) && uses(/\bwsgate_received_bytes_total\b/), 'bytes');
    for (const q of ['0.5', '0.9', '0.99']) {
      assert.ok(uses(new RegExp(`histogram_quantile\\(${q.replace('.', '\\.')}, .*wsgate_publish_fanout_duration_seconds_bucket`)), `publish latency p${q}`);
    }
    assert.ok(uses(/\bwsgate_heap_allocated_bytes_per_publish\b/), 'allocation per publish');
    assert.ok(uses(/\bnodejs_gc_duration_seconds_sum\b/), 'GC');
    assert.ok(uses(/\bnodejs_eventloop_lag_p99_seconds\b/), 'event loop');
    assert.ok(uses(/\bwsgate_slow_consumer_disconnects_total\b/) && uses(/\bwsgate_slow_consumer_drops_total\b/), 'slow consumers');
    assert.ok(uses(/\bwsgate_broker_up\b/) && uses(/\bwsgate_broker_roundtrip_seconds_bucket\b/), 'broker state');
  });
});
