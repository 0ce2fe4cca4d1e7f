import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Agent, get } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { REPEAT_GRACE_MS } from '../src/cli/stop-signals';
import { ConfigError, loadConfig } from '../src/config/load';
import { autoMaxConnections, openFilesLimit } from '../src/server/fd-limit';
import { MAIN, RawClient, sleep, spawnGateway, waitFor } from './helpers/gateway';

describe('graceful drain on SIGTERM', () => {
  it('goes unready, refuses new connections, closes clients with 1012 spread over the window, exits 0', async () => {
    const gw = await spawnGateway(['--drain-window', '1500', '--drain-timeout', '8000']);
    try {
      const url = `ws://127.0.0.1:${gw.port}/ws?topics=x`;
      const clients = await Promise.all(Array.from({ length: 30 }, () => RawClient.open(url)));
      const closedAt: number[] = [];
      for (const c of clients) c.ws.on('close', () => closedAt.push(Date.now()));
      const t0 = Date.now();
      gw.child.kill('SIGTERM');
      // New connections are refused from the start (listen socket closed).
      await sleep(100);
      await assert.rejects(RawClient.open(url));
      const code = await gw.exited;
      assert.equal(code, 0);
      assert.equal(closedAt.length, 30);
      for (const c of clients) assert.equal(c.closeCode, 1012);
      const spread = Math.max(...closedAt) - Math.min(...closedAt);
      assert.ok(spread >= 700, `closes spread over the window (${spread} ms)`);
      assert.ok(Date.now() - t0 < 8000, 'exited before the deadline');
      assert.match(gw.output(), /"msg":"drained"/);
    } finally {
      await gw.stop();
    }
  });

  it('/readyz answers 503 draining on a connection opened before the drain', async () => {
    const gw = await spawnGateway(['--drain-window', '3000', '--drain-timeout', '8000']);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const readyz = () =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        get({ host: '127.0.0.1', port: gw.port, path: '/readyz', agent }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        }).on('error', reject);
      });
    try {
      const clients = await Promise.all(Array.from({ length: 5 }, () => RawClient.open(`ws://127.0.0.1:${gw.port}/ws`)));
      assert.deepEqual(await readyz(), { status: 200, body: 'ready' });
      gw.child.kill('SIGTERM');
      await waitFor(() => gw.output().includes('"msg":"draining connections"'), 3000);
      assert.deepEqual(await readyz(), { status: 503, body: 'draining' });
      await waitFor(() => clients.every((c) => c.closeCode === 1012), 6000, 'all closed with 1012');
      await gw.exited;
    } finally {
      agent.destroy();
      await gw.stop();
    }
  });

  it('a second signal after the repeat grace period exits at once', async () => {
    const gw = await spawnGateway(['--drain-window', '20000', '--drain-timeout', '30000']);
    try {
      await Promise.all(Array.from({ length: 50 }, () => RawClient.open(`ws://127.0.0.1:${gw.port}/ws`)));
      gw.child.kill('SIGTERM');
      await waitFor(() => gw.output().includes('"msg":"draining connections"'), 3000);
      // Within REPEAT_GRACE_MS a signal is the echo of the first (test/serve-startup.test.ts); after it, deliberate.
      await sleep(REPEAT_GRACE_MS + 300);
      const t0 = Date.now();
      gw.child.kill('SIGINT');
      const code = await gw.exited;
      assert.equal(code, 130);
      assert.ok(Date.now() - t0 < 2000);
    } finally {
      await gw.stop();
    }
  });
});

describe('configuration', () => {
  const load = (argv: string[], env: Record<string, string> = {}) => loadConfig({ argv, env });

  it('has a default for every limit', () => {
    const c = load([]);
    assert.equal(c.port, 8080);
    assert.equal(c.maxPayload, 65536);
    assert.equal(c.maxTopicsPerConn, 256);
    assert.equal(c.idleTimeout, 120);
    assert.equal(c.maxBackpressure, 1048576);
    assert.equal(c.maxConnections, autoMaxConnections(openFilesLimit()), 'what the open-files limit allows');
    assert.equal(c.broker, 'memory');
  });

  it('takes flags over env over the config file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'wsgate-cfg-'));
    const file = path.join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ port: 1111, maxPayload: 2048, clientPublish: true }));
    const c = load(['--config', file, '--port', '3333'], { WSGATE_PORT: '2222', WSGATE_MAX_PAYLOAD: '4096' });
    assert.equal(c.port, 3333);
    assert.equal(c.maxPayload, 4096);
    assert.equal(c.clientPublish, true);
    assert.equal(load(['--client-publish']).clientPublish, true);
    assert.equal(load(['--client-publish=false']).clientPublish, false);
  });

  const bad: [string[], Record<string, string>, string, RegExp][] = [
    [['--port', 'abc'], {}, 'port', /integer 0\.\.65535/],
    [['--port', '70000'], {}, 'port', /integer 0\.\.65535/],
    [['--slow-consumer', 'maybe'], {}, 'slowConsumer', /one of disconnect, drop/],
    [['--idle-timeout', '5'], {}, 'idleTimeout', /0 or 9\.\.960/],
    [[], { WSGATE_LOG_LEVEL: 'loud' }, 'logLevel', /one of fatal, error/],
    [['--broker', 'kafka://x'], {}, 'broker', /memory, nats/],
    [['--no-such-flag', '1'], {}, '--no-such-flag', /--port/],
    [['--drain-window', '5000', '--drain-timeout', '1000'], {}, 'drainWindow', /less than drainTimeout/],
  ];
  for (const [argv, env, key, accepted] of bad) {
    it(`rejects ${JSON.stringify({ ...env, argv })} naming ${key} and what is accepted`, () => {
      assert.throws(() => load(argv, env), (e: unknown) => e instanceof ConfigError && e.key === key && accepted.test(e.message));
    });
  }

  it('wsgate serve fails fast with exit 2 and a message naming the key', () => {
    const r = spawnSync(process.execPath, [MAIN, 'serve', '--max-payload', 'lots'], { encoding: 'utf8', timeout: 10000 });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /invalid config maxPayload \(from --max-payload\): expected an integer 64\.\.16777216/);
  });

  it('wsgate serve --help lists every option with env name and default', () => {
    const r = spawnSync(process.execPath, [MAIN, 'serve', '--help'], { encoding: 'utf8', timeout: 10000 });
    assert.equal(r.status, 0);
    assert.match(r.stdout, /--max-backpressure/);
    assert.match(r.stdout, /WSGATE_MAX_BACKPRESSURE/);
  });
});
