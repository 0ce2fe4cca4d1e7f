// deploy/prometheus: promtool accepts the scrape config and rules, the promtool unit tests pass,
// every alert is unit-tested both firing and silent, and every alert has its operations section.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import YAML from 'yaml';
import { missingTool } from './helpers/tools';

const ROOT = path.join(__dirname, '..', '..');
const PROM = path.join(ROOT, 'deploy', 'prometheus');
const PROMTOOL = '/usr/bin/promtool';

type Obj = Record<string, unknown>;
const isRecord = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const list = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isRecord) : []);
const ymlFiles = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.yml'))
    .map((f) => path.join(dir, f));
const readYaml = (file: string): Obj => {
  const v: unknown = YAML.parse(readFileSync(file, 'utf8'));
  assert.ok(isRecord(v), file);
  return v;
};

function promtool(...args: string[]): string {
  const r = spawnSync(PROMTOOL, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `promtool ${args.join(' ')}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

const alerts = ymlFiles(path.join(PROM, 'rules')).flatMap((f) => list(readYaml(f).groups).flatMap((g) => list(g.rules).filter((r) => typeof r.alert === 'string')));
const alertTests = ymlFiles(path.join(PROM, 'tests')).flatMap((f) => list(readYaml(f).tests).flatMap((t) => list(t.alert_rule_test)));

const skip = missingTool(PROMTOOL, 'prometheus');

describe('deploy/prometheus with promtool', () => {
  it('promtool check config accepts the scrape config and the rule files it loads', { skip }, () => {
    const out = promtool('check', 'config', path.join(PROM, 'prometheus.yml'));
    // The glob must have found the rule files, not just matched nothing.
    for (const f of ymlFiles(path.join(PROM, 'rules'))) assert.ok(out.includes(path.basename(f)), `check config loaded ${f}\n${out}`);
  });

  it('promtool check rules accepts every rule file', { skip }, () => {
    promtool('check', 'rules', ...ymlFiles(path.join(PROM, 'rules')));
  });

  it('promtool test rules passes', { skip }, () => {
    promtool('test', 'rules', ...ymlFiles(path.join(PROM, 'tests')));
  });
});

describe('deploy/prometheus alert coverage', () => {
  it('alerts for everything that matters to a fan-out edge exist', () => {
    const names = alerts.map((a) => String(a.alert));
    for (const required of [
      'WsgateSlowConsumerDisconnects',
      'WsgatePublishFanoutSlow',
      'WsgateBrokerDown',
      'WsgateBrokerLagging',
      'WsgateConnectionSaturation',
      'WsgateEventLoopLag',
      'WsgateAllocationPerPublishRegression',
      'WsgateDrainStuck',
    ]) {
      assert.ok(names.includes(required), `alert ${required}`);
    }
  });

  it('every alert has a unit test where it fires and one where it stays silent', () => {
    for (const a of alerts) {
      const cases = alertTests.filter((t) => t.alertname === a.alert);
      assert.ok(cases.some((t) => list(t.exp_alerts).length > 0), `${String(a.alert)} has a firing case`);
      assert.ok(cases.some((t) => Array.isArray(t.exp_alerts) && t.exp_alerts.length === 0), `${String(a.alert)} has a silent case`);
    }
  });

  it('every alert has a severity, a summary, a description and a runbook section in deploy/README.md', () => {
    const readme = readFileSync(path.join(ROOT, 'deploy', 'README.md'), 'utf8');
    const anchors = new Set([...readme.matchAll(/^#{2,4} (.+)$/gm)].map((m) => m[1].trim().toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-')));
    for (const a of alerts) {
      const name = String(a.alert);
      assert.match(String(isRecord(a.labels) ? a.labels.severity : ''), /^(warning|critical)$/, name);
      const ann = isRecord(a.annotations) ? a.annotations : {};
      assert.ok(String(ann.summary ?? '') !== '' && String(ann.description ?? '') !== '', `${name} summary and description`);
      assert.equal(ann.runbook, `deploy/README.md#${name.toLowerCase()}`, name);
      assert.ok(anchors.has(name.toLowerCase()), `deploy/README.md has a heading "${name}"`);
    }
  });
});
