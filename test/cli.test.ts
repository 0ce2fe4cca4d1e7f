import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { type AddressInfo, connect } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { after, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { GatewayClient } from '../src/client/gateway-client';
import { MAIN, freePort, startGateway, waitFor } from './helpers/gateway';
import { makeTestPki } from './helpers/tls-certs';

/**
 * Runs the CLI to completion (killed after 15 s), as a user at a terminal would. Asynchronous: the
 * gateways of these tests run in this process and must keep answering meanwhile.
 */
async function run(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WSGATE_API_KEY: '', ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const [status] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  return { status, stdout, stderr };
}

/** A long-running `wsgate sub`; killed by PID when the test is done. */
class SubProcess {
  out = '';
  err = '';
  readonly exited: Promise<number | null>;
  constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (d: Buffer) => (this.out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.err += d.toString()));
    this.exited = once(child, 'exit').then(([code]) => code as number | null);
  }
  static start(args: readonly string[]): SubProcess {
    return new SubProcess(spawn(process.execPath, [MAIN, 'sub', ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
  }
  async subscribed(): Promise<void> {
    await waitFor(() => this.err.includes('subscribed to') || this.child.exitCode !== null, 10_000, 'sub to subscribe');
    assert.ok(this.err.includes('subscribed to'), this.err);
  }
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

describe('wsgate CLI', () => {
  const started: { stop(): Promise<void> }[] = [];
  after(async () => {
    for (const s of started.reverse()) await s.stop();
  });

  for (const cmd of ['serve', 'sub', 'pub']) {
    it(`${cmd} --help prints usage with examples and exits 0`, async () => {
      for (const args of [[cmd, '--help'], [cmd, '-h'], ['help', cmd]]) {
        const r = await run(args);
        assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stdout, new RegExp(`^Usage: wsgate ${cmd}`));
        assert.match(r.stdout, /Examples:\n {2}npx wsgate /);
      }
    });
  }

  it('prints the command list for no command, help and --help (exit 0) and for an unknown one (exit 2)', async () => {
    for (const args of [[], ['help'], ['--help']]) assert.equal((await run(args)).status, 0);
    const r = await run(['nope']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown command nope[\s\S]*wsgate sub <topic…>/);
  });

  it('names a usage mistake and exits 2', async () => {
    const r = await run(['pub', 'news']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /expected exactly <topic> <data>[\s\S]*wsgate pub --help/);
    assert.match((await run(['sub', 'news', '--colour', 'red'])).stderr, /unknown option --colour/);
    assert.match((await run(['sub', 'news', '--url', 'ftp://x'])).stderr, /scheme must be ws:\/\/, wss:\/\/, http:\/\/ or https:\/\//);
  });

  it('says "connection refused" when nothing listens, for pub and sub alike', async () => {
    const port = await freePort();
    for (const args of [
      ['pub', 'news', '1', '--url', `http://127.0.0.1:${port}`],
      ['pub', 'news', '1', '--url', `ws://127.0.0.1:${port}/ws`, '--via', 'ws'],
      ['sub', 'news', '--url', `ws://127.0.0.1:${port}/ws`],
    ]) {
      const r = await run(args);
      assert.equal(r.status, 1, args.join(' '));
      assert.match(r.stderr, /cannot reach .*: connection refused/);
    }
  });

  it('pub and sub accept the gateway as ws://, http:// or a bare origin, and sub prints deliveries', async () => {
    const g = await startGateway(['--client-publish']);
    started.push(g);
    const port = String(g.port);
    const viaHttpOrigin = SubProcess.start(['news', 'sports', '--url', `http://127.0.0.1:${port}`]);
    started.push(viaHttpOrigin);
    await viaHttpOrigin.subscribed();
    assert.match(viaHttpOrigin.err, new RegExp(`at ws://127.0.0.1:${port}/ws`));
    const p1 = await run(['pub', 'news', '{"headline":"hello"}', '--url', `ws://127.0.0.1:${port}/ws`]);
    assert.equal(p1.status, 0, p1.stderr);
    assert.deepEqual(JSON.parse(p1.stdout), { results: [{ topic: 'news', seq: 1 }] });
    const p2 = await run(['pub', 'sports', 'plain text', '--via', 'ws', '--url', `http://127.0.0.1:${port}/`]);
    assert.equal(p2.status, 0, p2.stderr);
    assert.deepEqual(JSON.parse(p2.stdout), { results: [{ topic: 'sports', seq: 1 }] });
    const p3 = await run(['pub', 'news', '2'], { WSGATE_PORT: port });
    assert.equal(p3.status, 0, `a bare pub uses WSGATE_PORT: ${p3.stderr}`);
    await waitFor(() => viaHttpOrigin.out.trim().split('\n').length === 3, 5000, 'three deliveries');
    assert.deepEqual(
      viaHttpOrigin.out.trim().split('\n').map((l) => JSON.parse(l) as unknown),
      [
        { t: 'news', s: 1, d: { headline: 'hello' } },
        { t: 'sports', s: 1, d: 'plain text' },
        { t: 'news', s: 2, d: 2 },
      ],
    );
  });

  it('takes wss:// and https:// through a TLS front, and names a certificate it cannot verify', async () => {
    const g = await startGateway([]);
    started.push(g);
    const pki = makeTestPki();
    // A TLS terminator in front of the gateway, as a reverse proxy would be (bytes passed through).
    const front = createTlsServer({ cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey) }, (tlsSocket) => {
      const upstream = connect(g.port, '127.0.0.1');
      tlsSocket.pipe(upstream).pipe(tlsSocket);
      upstream.on('error', () => tlsSocket.destroy());
      tlsSocket.on('error', () => upstream.destroy());
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    started.push({ stop: () => new Promise<void>((resolve) => front.close(() => (pki.remove(), resolve()))) });
    const port = (front.address() as AddressInfo).port;
    const trusted = { NODE_EXTRA_CA_CERTS: pki.ca };
    const s = new SubProcess(spawn(process.execPath, [MAIN, 'sub', 'news', '--url', `wss://127.0.0.1:${port}/ws`], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...trusted } }));
    started.push(s);
    await s.subscribed();
    const p = await run(['pub', 'news', '"over tls"', '--url', `https://127.0.0.1:${port}`], trusted);
    assert.equal(p.status, 0, p.stderr);
    await waitFor(() => s.out.includes('over tls'), 5000, 'delivery through the TLS front');
    for (const args of [
      ['sub', 'news', '--url', `wss://127.0.0.1:${port}/ws`],
      ['pub', 'news', '1', '--url', `https://127.0.0.1:${port}`],
    ]) {
      const r = await run(args);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /cannot reach .*: TLS: /, args.join(' '));
    }
  });

  it('prints the HTTP status and the gateway error code of a refused publish or upgrade', async () => {
    const secret = 'cli-test-secret-of-32-bytes-long!';
    const g = await startGateway(['--api-key', 'right', '--jwt-secret', secret]);
    started.push(g);
    const wrongKey = await run(['pub', 'news', '1', '--url', g.http, '--api-key', 'wrong']);
    assert.equal(wrongKey.status, 1);
    assert.match(wrongKey.stderr, /publish refused: HTTP 401 unauthorized: Authorization: Bearer <api key> required/);
    const keyFromEnv = await run(['pub', 'news', '1', '--url', g.http], { WSGATE_API_KEY: 'right' });
    assert.equal(keyFromEnv.status, 0, keyFromEnv.stderr);
    const noToken = await run(['sub', 'news', '--url', g.ws]);
    assert.equal(noToken.status, 1);
    assert.match(noToken.stderr, /refused the WebSocket upgrade: HTTP 401 unauthorized/);
    const narrow = await new SignJWT({ subscribe: ['chat.*'], publish: [] }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(new TextEncoder().encode(secret));
    const forbiddenSub = await run(['sub', 'news', '--url', g.ws, '--token', narrow]);
    assert.equal(forbiddenSub.status, 1);
    assert.match(forbiddenSub.stderr, /subscription to news refused: forbidden/);
    const forbiddenPub = await run(['pub', 'chat.a', '1', '--via', 'ws', '--url', g.ws, '--token', narrow]);
    assert.equal(forbiddenPub.status, 1);
    assert.match(forbiddenPub.stderr, /publish refused: forbidden/);
  });

  it('npm start: a SIGTERM to npm reaches the gateway, which drains and exits (the script execs node)', async () => {
    const port = await freePort();
    const npm = spawn('npm', ['start'], { cwd: path.join(__dirname, '..', '..'), stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WSGATE_PORT: String(port), WSGATE_HOST: '127.0.0.1' }, detached: true });
    let out = '';
    npm.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    npm.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const exited = once(npm, 'exit');
    try {
      await waitFor(() => out.includes('"listening"') || npm.exitCode !== null, 30_000, 'npm start listening');
      npm.kill('SIGTERM');
      await waitFor(() => out.includes('"drained"'), 15_000, 'the gateway to drain');
      await exited;
      const health = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null);
      assert.equal(health, null, 'nothing listens after npm exited');
    } finally {
      // The process group: npm and, if the signal did not reach it, the gateway under it.
      try {
        if (npm.pid !== undefined) process.kill(-npm.pid, 'SIGKILL');
      } catch {
        // the group is gone: both exited
      }
    }
  });

  it('sub reports the close code when the gateway drains (1012) and exits 1', async () => {
    const g = await startGateway(['--drain-window', '0']);
    const s = SubProcess.start(['news', '--url', g.ws]);
    started.push(s);
    await s.subscribed();
    const bystander = await GatewayClient.connect(g.ws);
    await g.gw.drain();
    assert.equal(await s.exited, 1);
    assert.match(s.err, /connection closed by the gateway: 1012 \(the gateway is draining/);
    await bystander.close();
    await g.stop();
  });
});
