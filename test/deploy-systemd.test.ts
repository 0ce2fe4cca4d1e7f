import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { freePort, sleep, waitFor } from './helpers/gateway';
import { missingTool } from './helpers/tools';

const ROOT = path.join(__dirname, '..', '..');
const UNIT = path.join(ROOT, 'deploy', 'wsgate.service');
const ENV_EXAMPLE = path.join(ROOT, 'deploy', 'wsgate.env.example');
const INSTALL_DIR = '/opt/wsgate';

/** `Key=value` lines of one section of a unit file (repeated keys keep every value). */
function section(unit: string, name: string): [string, string][] {
  const lines = unit.split('\n');
  const start = lines.indexOf(`[${name}]`);
  assert.ok(start >= 0, `[${name}] section`);
  const out: [string, string][] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('[')) break;
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    out.push([line.slice(0, eq), line.slice(eq + 1)]);
  }
  return out;
}

/** What systemd reads from an EnvironmentFile: KEY=value lines, # comments. */
function envFile(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

describe('deploy/wsgate.service', () => {
  const unit = readFileSync(UNIT, 'utf8');
  const service = section(unit, 'Service');
  const get = (key: string) => service.find(([k]) => k === key)?.[1];

  it('passes systemd-analyze verify without a warning', { skip: missingTool('systemd-analyze', 'systemd') }, () => {
    const r = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    // verify exits 0 on unknown keys and unparsable values, printing them: any output is a defect.
    assert.equal(`${r.stdout}${r.stderr}`.trim(), '');
  });

  it('waits longer than the drain before SIGKILL, and runs node itself (npm would not pass SIGTERM on)', () => {
    const env = envFile(readFileSync(ENV_EXAMPLE, 'utf8'));
    assert.ok(Number(get('TimeoutStopSec')) * 1000 > Number(env.WSGATE_DRAIN_TIMEOUT), 'TimeoutStopSec > WSGATE_DRAIN_TIMEOUT');
    assert.equal(get('KillSignal'), 'SIGTERM');
    assert.match(get('ExecStart') ?? '', /^\/usr\/bin\/node \S+\/dist\/src\/cli\/main\.js serve$/);
    assert.equal(get('EnvironmentFile'), '/etc/wsgate/wsgate.env');
  });

  it('its command line with the example environment starts, serves, and drains to exit 0 on SIGTERM', async () => {
    // What systemd would run, from this checkout instead of /opt/wsgate, with the example file's
    // variables plus the two secrets it leaves for the operator to fill in.
    const [exe, ...args] = (get('ExecStart') as string).replace(INSTALL_DIR, ROOT).split(' ') as [string, ...string[]];
    const port = await freePort();
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      ...Object.fromEntries((get('Environment') ?? '').split(' ').map((kv) => kv.split('=') as [string, string])),
      ...envFile(readFileSync(ENV_EXAMPLE, 'utf8')),
      WSGATE_PORT: String(port),
      WSGATE_API_KEY: 'systemd-test-key',
      WSGATE_JWT_SECRET: 'systemd-test-secret-of-enough-length',
      WSGATE_DRAIN_WINDOW: '200',
    };
    const child = spawn(exe, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = once(child, 'exit');
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await waitFor(() => out.includes('"listening"') || child.exitCode !== null, 10_000, 'listening');
      assert.ok(out.includes('"listening"'), out);
      const refused = await fetch(`http://127.0.0.1:${port}/publish`, { method: 'POST', body: '{"topic":"t","data":1}' });
      assert.equal(refused.status, 401, 'the API key from the environment file is in force');
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
      const status = await new Promise<number>((resolve) => ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
      assert.equal(status, 401, 'and so is the JWT secret');
      child.kill('SIGTERM');
      const [code] = (await Promise.race([exited, sleep(Number(get('TimeoutStopSec')) * 1000).then(() => ['timeout'])])) as [number | string];
      assert.equal(code, 0, out);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});
