import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { MAIN, RawClient, type TestGateway, freePort, spawnGateway, startGateway } from './helpers/gateway';

const PROMTOOL = '/usr/bin/promtool';

/** Runs `serve` on a free port with exactly these flags (no test defaults) until it listens or exits. */
async function serveOnce(flags: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<{ listened: boolean; status: number | null; stderr: string }> {
  const child = spawn(process.execPath, [MAIN, 'serve', '--host', '127.0.0.1', '--port', '0', '--log-level', 'info', ...flags], { env: { PATH: process.env.PATH, ...env } });
  const exited = once(child, 'exit');
  let out = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const listened = await new Promise<boolean>((resolve) => {
    const poll = setInterval(() => {
      if (out.includes('"listening"')) done(true);
      else if (child.exitCode !== null) done(false);
    }, 20);
    const done = (v: boolean) => {
      clearInterval(poll);
      resolve(v);
    };
  });
  if (child.exitCode === null) child.kill('SIGKILL');
  await exited;
  return { listened, status: child.exitCode, stderr };
}

describe('the HTTP API is not open by default', () => {
  it('serve exits 2 with a clear message when POST /publish would be reachable without --api-key', async () => {
    const r = await serveOnce([]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /POST \/publish would be reachable without an API key on the public port\. Set --api-key/);
    const wide = await serveOnce(['--admin-port', '1', '--admin-host', '0.0.0.0']);
    assert.equal(wide.status, 2);
    assert.match(wide.stderr, /on the admin listener 0\.0\.0\.0:1/);
  });

  it('starts with --api-key, WSGATE_API_KEY, --api-insecure, or the API on a loopback --admin-port', async () => {
    assert.equal((await serveOnce(['--api-key', 'k'])).listened, true);
    assert.equal((await serveOnce([], { WSGATE_API_KEY: 'k' })).listened, true);
    assert.equal((await serveOnce(['--api-insecure'])).listened, true);
    assert.equal((await serveOnce(['--admin-port', String(await freePort())])).listened, true);
  });
});

describe('--admin-port: API, metrics and health on a separate listener', () => {
  let g: TestGateway;
  let admin = '';
  before(async () => {
    const port = await freePort();
    g = await startGateway(['--admin-port', String(port), '--page']);
    admin = `http://127.0.0.1:${port}`;
  });
  after(() => g.stop());

  it('the public port carries only upgrades and the page', async () => {
    const c = await RawClient.open(`${g.ws}?topics=a`);
    assert.equal((await fetch(`${g.http}/`)).status, 200);
    for (const path of ['/publish', '/metrics', '/healthz', '/readyz']) {
      const res = await fetch(`${g.http}${path}`, { method: path === '/publish' ? 'POST' : 'GET', headers: { 'content-type': 'application/json' }, body: path === '/publish' ? '{"topic":"a","data":1}' : undefined });
      assert.equal(res.status, 404, path);
    }
    assert.equal((await fetch(`${admin}/healthz`)).status, 200);
    assert.equal((await fetch(`${admin}/readyz`)).status, 200);
    const pub = await fetch(`${admin}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"topic":"a","data":1}' });
    assert.equal(pub.status, 200);
    await c.received(1);
    assert.deepEqual(c.json(), [{ t: 'a', s: 1, d: 1 }]);
    assert.equal((await fetch(`${admin}/`)).status, 404, 'the page is public only');
    c.close();
  });

  it('promtool check metrics reports nothing on the live /metrics', async () => {
    const text = await (await fetch(`${admin}/metrics`)).text();
    assert.match(text, /wsgate_handler_errors_total\{handler="message"\} 0/);
    const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(`${r.stdout}${r.stderr}`.trim(), '');
    assert.equal(r.status, 0);
  });

  it('while draining, the admin listener still answers: /readyz 503, /metrics 200', async () => {
    const port = await freePort();
    const child = await spawnGateway(['--admin-port', String(port), '--drain-window', '2000', '--drain-timeout', '5000']);
    try {
      // Four connections spread over the 2 s window: the drain is still running 300 ms in.
      const held = await Promise.all(Array.from({ length: 4 }, () => RawClient.open(`ws://127.0.0.1:${child.port}/ws`)));
      child.child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 300));
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
      assert.equal(ready.status, 503);
      assert.equal(await ready.text(), 'draining');
      assert.equal((await fetch(`http://127.0.0.1:${port}/metrics`)).status, 200);
      for (const c of held) assert.equal(await c.closed(5000), 1012);
      assert.equal(await child.exited, 0);
    } finally {
      await child.stop();
    }
  });
});
