import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { describe, it } from 'node:test';
import { frontDoors, startupWarnings } from '../src/cli/startup-report';
import { REPEAT_GRACE_MS, StopSignals } from '../src/cli/stop-signals';
import { loadConfig } from '../src/config/load';
import { prettyLine } from '../src/log';
import { EXIT_CANNOT_LISTEN } from '../src/server/listen';
import { MAIN, RawClient, freePort, sleep, spawnGateway, waitFor } from './helpers/gateway';
import { missingTool } from './helpers/tools';

const ROOT = path.join(__dirname, '..', '..');

/** A process (group leader when `detached`) whose output is collected; killed by PID (group) in stop(). */
class Proc {
  out = '';
  readonly exited: Promise<number | null>;
  constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (d: Buffer) => (this.out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.out += d.toString()));
    this.exited = once(child, 'exit').then(([code]) => code as number | null);
  }

  static serve(args: readonly string[], opts: { env?: NodeJS.ProcessEnv } = {}): Proc {
    return new Proc(spawn(process.execPath, [MAIN, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WSGATE_API_KEY: '', ...opts.env } }));
  }

  async stop(group = false): Promise<void> {
    const pid = this.child.pid;
    if (pid !== undefined && this.child.exitCode === null && this.child.signalCode === null) {
      try {
        process.kill(group ? -pid : pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await this.exited;
  }
}

const config = (argv: string[]) => loadConfig({ argv, env: {} });

describe('serve: the port is this process\'s alone', () => {
  it('a second serve on a port in use exits 3 naming the port and how to find its holder; the first keeps all connections', async () => {
    const first = await spawnGateway();
    const second = Proc.serve(['--host', '127.0.0.1', '--port', String(first.port), '--api-insecure', '--log-format', 'json']);
    try {
      assert.equal(await second.exited, EXIT_CANNOT_LISTEN);
      assert.match(second.out, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${first.port} \\(--port\\): the port is in use by another process \\(find it with: ss -ltnp`));
      assert.doesNotMatch(second.out, /"msg":"listening"/);
      // Every connection reaches the first node: the second never shared the port (SO_REUSEPORT).
      const clients = await Promise.all(Array.from({ length: 8 }, () => RawClient.open(`ws://127.0.0.1:${first.port}/ws`)));
      const m = /wsgate_connections (\d+)/.exec(await (await fetch(`http://127.0.0.1:${first.port}/metrics`)).text());
      assert.equal(Number(m?.[1]), 8);
      for (const c of clients) c.close();
    } finally {
      await second.stop();
      await first.stop();
    }
  });

  it('so does one whose --admin-port is taken, having bound nothing', async () => {
    const holder = await spawnGateway();
    const port = await freePort();
    const second = Proc.serve(['--host', '127.0.0.1', '--port', String(port), '--admin-port', String(holder.port), '--log-format', 'json']);
    try {
      assert.equal(await second.exited, EXIT_CANNOT_LISTEN);
      assert.match(second.out, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${holder.port} \\(--admin-port\\): the port is in use`));
      await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`), 'the public port was never opened');
    } finally {
      await second.stop();
      await holder.stop();
    }
  });
});

describe('serve: one stop, one drain', () => {
  it('classifies a repeat within the grace period as the same stop, a later one as deliberate', () => {
    let now = 0;
    const s = new StopSignals(REPEAT_GRACE_MS, () => now);
    assert.equal(s.classify(), 'drain');
    now = REPEAT_GRACE_MS - 1;
    assert.equal(s.classify(), 'repeat');
    now = REPEAT_GRACE_MS;
    assert.equal(s.classify(), 'exit_now');
  });

  // What systemd's control-group kill and a terminal's Ctrl-C do to `npm start`: the signal reaches npm
  // and node alike, and npm passes its own on, so node gets it twice within milliseconds.
  it('SIGTERM to the whole `npm start` process group: every socket gets 1012, the drain completes, exit 0; it listens on 127.0.0.1', { timeout: 60_000 }, async () => {
    const port = await freePort();
    const { WSGATE_HOST: _host, ...env } = process.env;
    const npm = new Proc(spawn('npm', ['start'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...env, WSGATE_PORT: String(port), WSGATE_DRAIN_WINDOW: '1500', WSGATE_LOG_FORMAT: 'json' } }));
    try {
      await waitFor(() => npm.out.includes('"msg":"listening"') || npm.child.exitCode !== null, 30_000, 'npm start listening');
      assert.match(npm.out, new RegExp(`"host":"127\\.0\\.0\\.1","port":${port}`), 'npm start binds loopback unless WSGATE_HOST says otherwise');
      const clients = await Promise.all(Array.from({ length: 8 }, () => RawClient.open(`ws://127.0.0.1:${port}/ws?topics=demo`)));
      process.kill(-(npm.child.pid as number), 'SIGTERM');
      await waitFor(() => clients.every((c) => c.closeCode !== null), 15_000, 'every socket closed');
      assert.deepEqual(clients.map((c) => c.closeCode), Array(8).fill(1012));
      await npm.exited;
      assert.match(npm.out, /"msg":"drained"/);
      // npm's echo is usually logged as ignored; it may also merge with the first into one pending signal.
      assert.doesNotMatch(npm.out, /exiting now/);
    } finally {
      await npm.stop(true);
    }
  });

  it('SIGINT twice within the grace period (a terminal\'s Ctrl-C under npm) drains; a deliberate later SIGTERM cuts it short with 143', async () => {
    const gw = await spawnGateway(['--drain-window', '20000', '--drain-timeout', '30000']);
    try {
      const clients = await Promise.all(Array.from({ length: 4 }, () => RawClient.open(`ws://127.0.0.1:${gw.port}/ws`)));
      gw.child.kill('SIGINT');
      // Sent back to back, two SIGINTs may merge into one pending signal (harmless); send the echo once
      // the first has been handled, as npm's forwarding arrives.
      await waitFor(() => gw.output().includes('"msg":"draining connections"'), 3000, 'the drain started');
      gw.child.kill('SIGINT');
      await waitFor(() => gw.output().includes('stop signal repeated'), 5000, 'the repeat logged');
      assert.equal(gw.child.exitCode, null, 'still draining');
      await sleep(REPEAT_GRACE_MS + 300);
      gw.child.kill('SIGTERM');
      assert.equal(await gw.exited, 143);
      await waitFor(() => clients.every((c) => c.closeCode !== null), 5000, 'sockets closed');
    } finally {
      await gw.stop();
    }
  });
});

describe('serve: what a newcomer reads first', () => {
  it('warns about placeholder-looking and short secrets (never printing them) and an open API off loopback', () => {
    const w = startupWarnings(config(['--api-key', '…', '--pusher-apps', '1:app-key:short', '--webhook-url', 'http://127.0.0.1:1/h', '--webhook-secret', 'change-me']));
    assert.deepEqual(w.map((x) => x.replace(/:.*/, '')), ['--api-key looks like a placeholder copied from an example', '--webhook-secret looks like a placeholder copied from an example', "--pusher-apps", "--pusher-apps"]);
    assert.match(w[2] as string, /app 1's key looks like a placeholder/);
    assert.match(w[3] as string, /app 1's secret is shorter than 16 characters/);
    assert.ok(w.every((x) => !x.includes('short') || x.includes('shorter')), 'the secret itself is not printed');
    assert.deepEqual(startupWarnings(config(['--api-key', 'f3a9c2d17b8e4f60a1c5d9e2b7f40c83', '--pusher-apps', '1:9f2c1a7e3b:0c8d4e2f6a1b9c3d5e7f'])), []);
    assert.match(startupWarnings(config(['--api-insecure'])).join('\n'), /--api-insecure on 0\.0\.0\.0: anyone who can reach this machine can publish/);
    assert.deepEqual(startupWarnings(config(['--api-insecure', '--host', '127.0.0.1'])), []);
    assert.deepEqual(startupWarnings(config(['--api-insecure', '--admin-port', '9091'])), [], 'the API is on the loopback admin listener');
  });

  it('names the front doors that are on', () => {
    assert.deepEqual(frontDoors(config(['--host', '127.0.0.1', '--api-insecure', '--page', '--client-publish']), 8080), {
      websocket: 'ws://127.0.0.1:8080/ws (clients may publish)',
      pusher: 'off',
      httpApi: 'http://127.0.0.1:8080/publish, no key (--api-insecure)',
      page: 'http://127.0.0.1:8080/',
    });
    const doors = frontDoors(config(['--pusher-apps', '1:k1:s1,2:k2:s2', '--admin-port', '9091']), 8080);
    assert.equal(doors.pusher, '/app/<key>, 2 apps');
    assert.equal(doors.httpApi, 'http://127.0.0.1:9091/publish, no key, loopback only');
  });

  it('formats a pino line as one readable line, an error\'s stack below it', () => {
    const t = Date.UTC(2026, 11, 6, 12, 0, 1, 234);
    assert.equal(prettyLine(JSON.stringify({ level: 30, time: t, pid: 1, service: 'wsgate', host: '127.0.0.1', port: 8080, note: 'two words', msg: 'listening' }), false), '12:00:01.234 INFO  listening  host=127.0.0.1 port=8080 note="two words"\n');
    assert.equal(prettyLine(JSON.stringify({ level: 40, time: t, msg: 'careful' }), true), '12:00:01.234 \x1b[33mWARN \x1b[0m careful\n');
    assert.match(prettyLine(JSON.stringify({ level: 50, time: t, msg: 'boom', err: { message: 'x', stack: 'Error: x\n    at f' } }), false), /ERROR boom\n {4}Error: x\n {8}at f\n$/);
    assert.equal(prettyLine('not json', false), 'not json');
  });

  const script = missingTool('script', 'bsdutils', ['--version']);
  it('logs readable lines on a terminal and JSON into a pipe or with --log-format json; the first lines say where and which doors', { skip: script }, async () => {
    const run = async (cmd: string): Promise<string> => {
      const p = new Proc(spawn('script', ['-qec', cmd, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, NO_COLOR: '1', WSGATE_API_KEY: '' } }));
      try {
        await waitFor(() => p.out.includes('front doors') || p.child.exitCode !== null, 15_000, 'front doors line');
        return p.out;
      } finally {
        await p.stop(true);
      }
    };
    const serve = `${process.execPath} ${MAIN} serve --host 127.0.0.1 --port 0 --api-insecure`;
    const tty = await run(serve);
    assert.match(tty, /^\d\d:\d\d:\d\d\.\d{3} INFO  listening {2}host=127\.0\.0\.1 port=\d+ broker=memory\r?$/m);
    assert.match(tty, /INFO  front doors {2}websocket=ws:\/\/127\.0\.0\.1:\d+\/ws pusher=off httpApi="http:\/\/127\.0\.0\.1:\d+\/publish, no key \(--api-insecure\)" page=off/);
    assert.doesNotMatch(tty, /WARN|open files/, 'nothing alarming on a plain start');
    assert.match(await run(`${serve} --log-format json`), /^\{"level":30,.*"msg":"listening"\}\r?$/m);
    const piped = Proc.serve(['--host', '127.0.0.1', '--port', '0', '--api-insecure']);
    try {
      await waitFor(() => piped.out.includes('front doors'), 15_000, 'front doors line');
      assert.match(piped.out, /^\{"level":30,.*"msg":"listening"\}$/m);
    } finally {
      await piped.stop();
    }
  });
});
