import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MAIN, freePort, startGateway, type TestGateway, waitFor } from './helpers/gateway';
import { makeTestPki, type TestPki } from './helpers/tls-certs';
import { missingTool } from './helpers/tools';

const ROOT = path.join(__dirname, '..', '..');
const CONF = path.join(ROOT, 'deploy', 'nginx', 'wsgate.conf');
const NGINX = '/usr/sbin/nginx';
const skip = missingTool(NGINX, 'nginx-light', ['-v']);

/**
 * deploy/nginx/wsgate.conf (shown in docs/production.md) in a real nginx in front of a real gateway.
 * Only what a host-specific install changes is swapped: the listen port, certificate paths, the
 * gateway's port and the log path.
 */
describe('deploy/nginx/wsgate.conf in front of a gateway', () => {
  let g: TestGateway;
  let pki: TestPki;
  let dir: string;
  let nginx: ChildProcess;
  let port: number;
  const log = () => readFileSync(path.join(dir, 'wsgate.log'), 'utf8');

  before(async () => {
    if (skip) return;
    g = await startGateway([]);
    pki = makeTestPki();
    dir = mkdtempSync(path.join(tmpdir(), 'wsgate-nginx-'));
    port = await freePort();
    const site = readFileSync(CONF, 'utf8')
      .replace('listen 443 ssl;', `listen 127.0.0.1:${port} ssl;`)
      .replace('/etc/letsencrypt/live/ws.example.com/fullchain.pem', pki.serverCert)
      .replace('/etc/letsencrypt/live/ws.example.com/privkey.pem', pki.serverKey)
      .replace('/var/log/nginx/wsgate.log', path.join(dir, 'wsgate.log'))
      .replace('http://127.0.0.1:8080', `http://127.0.0.1:${g.port}`);
    writeFileSync(path.join(dir, 'wsgate.conf'), site);
    // One foreground process, everything it writes under the temp dir.
    const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${dir}/${t};`).join(' ');
    writeFileSync(
      path.join(dir, 'nginx.conf'),
      `daemon off; master_process off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;\nevents {}\nhttp { ${temp} access_log off; include ${dir}/wsgate.conf; }\n`,
    );
    const check = spawnSync(NGINX, ['-t', '-p', dir, '-c', path.join(dir, 'nginx.conf')], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stderr);
    nginx = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: 'ignore' });
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/`).catch(() => null)) !== null || nginx.exitCode !== null, 5000, 'nginx listening');
  });

  after(async () => {
    if (nginx && nginx.exitCode === null) {
      nginx.kill('SIGKILL');
      await once(nginx, 'exit');
    }
    await g?.stop();
    pki?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('carries a wss:// subscription to the gateway, keeps /publish out of reach, and logs no query string', { skip }, async () => {
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: pki.ca };
    const sub = spawn(process.execPath, [MAIN, 'sub', 'news', '--url', `wss://127.0.0.1:${port}/ws?token=secret-in-query`], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    sub.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    sub.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await waitFor(() => out.includes('subscribed to') || sub.exitCode !== null, 10_000, 'subscribed through nginx');
      assert.match(out, /subscribed to news/);
      const published = await fetch(`${g.http}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"topic":"news","data":"through nginx"}' });
      assert.equal(published.status, 200);
      await waitFor(() => out.includes('through nginx'), 5000, 'delivery through nginx');
      const outside = spawnSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', pki.ca, '-d', '{"topic":"news","data":1}', `https://127.0.0.1:${port}/publish`], { encoding: 'utf8' });
      assert.equal(outside.stdout, '404');
    } finally {
      sub.kill('SIGKILL');
      await once(sub, 'exit');
    }
    await waitFor(() => log().includes('"GET /ws" 101'), 5000, 'the upgrade logged when the connection ends');
    assert.ok(!log().includes('secret-in-query'), log());
  });
});
