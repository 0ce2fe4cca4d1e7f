import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { loadConfig } from '../src/config/load';
import { FALLBACK_MAX_CONNECTIONS, FD_RESERVE, autoMaxConnections, connectionBudget, openFilesLimit } from '../src/server/fd-limit';
import { MAIN, RawClient, freePort, sleep, waitFor } from './helpers/gateway';

/** CPU seconds a process has used (user + system), from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

describe('open-files limit', () => {
  it('reads the soft limit from /proc/self/limits text', () => {
    const text = 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n';
    assert.equal(openFilesLimit(text), 1024);
    assert.equal(openFilesLimit('Max open files            unlimited            unlimited            files\n'), null);
    assert.equal(openFilesLimit(''), null);
  });

  it('keeps --max-connections that fits, lowers one that does not, with a one-line warning naming both numbers', () => {
    assert.deepEqual(connectionBudget(1000, 1000 + FD_RESERVE), { maxConnections: 1000, warning: null });
    assert.deepEqual(connectionBudget(1000, null), { maxConnections: 1000, warning: null });
    const b = connectionBudget(100_000, 1000);
    assert.equal(b.maxConnections, 1000 - FD_RESERVE);
    assert.match(b.warning ?? '', /^--max-connections 100000 is over what the open-files limit 1000 allows: accepting at most 872 connections \(raise ulimit -n/);
    assert.ok((b.warning ?? '').length < 200, 'one short line');
  });

  it('--max-connections 0 (the default) is what the open-files limit allows, without a warning', () => {
    assert.equal(autoMaxConnections(1024), 1024 - FD_RESERVE);
    assert.equal(autoMaxConnections(null), FALLBACK_MAX_CONNECTIONS);
    assert.equal(loadConfig({ argv: [], env: {} }).maxConnections, autoMaxConnections(openFilesLimit()));
    assert.equal(loadConfig({ argv: ['--max-connections', '5'], env: {} }).maxConnections, 5);
    assert.deepEqual(connectionBudget(autoMaxConnections(1024), 1024), { maxConnections: 1024 - FD_RESERVE, warning: null });
  });

  // Issue 16: past the limit accept() fails with EMFILE, the listen socket stays readable and the old
  // gateway spun (~60 % of a core here) with /healthz timing out. Now the upgrades past the lowered
  // limit get 503 and their connections are closed, so descriptors remain for HTTP.
  it('under prlimit --nofile=300 with 400 clients: 503s past the lowered limit, no spin, /healthz answers, existing clients keep receiving', async () => {
    const LIMIT = 300;
    const port = await freePort();
    const child = spawn('prlimit', [`--nofile=${LIMIT}:${LIMIT}`, process.execPath, MAIN, 'serve', '--host', '127.0.0.1', '--port', String(port), '--client-publish', '--api-insecure', '--max-connections', '100000', '--log-level', 'warn'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = once(child, 'exit');
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const flood: WebSocket[] = [];
    try {
      const healthz = async (): Promise<number> => {
        const r = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) }).catch(() => null);
        return r?.status ?? 0;
      };
      await waitFor(async () => (await healthz()) === 200, 15_000, 'gateway up');
      assert.match(out, /open-files limit 300 allows: accepting at most 172 connections/);
      const sub = await RawClient.open(`ws://127.0.0.1:${port}/ws?topics=check`);
      const pub = await RawClient.open(`ws://127.0.0.1:${port}/ws`);

      let opened = 0;
      const statuses = new Map<number, number>();
      let failed = 0;
      for (let i = 0; i < 400; i++) {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?topics=x`);
        ws.on('open', () => opened++);
        ws.on('unexpected-response', (req, res) => {
          statuses.set(res.statusCode ?? 0, (statuses.get(res.statusCode ?? 0) ?? 0) + 1);
          req.destroy();
        });
        ws.on('error', () => failed++);
        flood.push(ws);
      }
      await waitFor(() => opened + [...statuses.values()].reduce((s, n) => s + n, 0) + failed >= 400, 20_000, 'every flood client answered');
      assert.equal(opened, 172 - 2, 'the lowered limit, less the two clients already connected');
      assert.equal(statuses.get(503), 400 - opened);

      const pid = child.pid as number;
      const c0 = cpuSeconds(pid);
      const t0 = performance.now();
      await sleep(2000);
      const cpuPercent = ((cpuSeconds(pid) - c0) / ((performance.now() - t0) / 1000)) * 100;
      assert.ok(cpuPercent < 20, `gateway used ${cpuPercent.toFixed(0)} % of a core while idle at its limit`);
      const t1 = performance.now();
      assert.equal(await healthz(), 200);
      assert.ok(performance.now() - t1 < 1000, '/healthz answered within a second');

      pub.ws.send(JSON.stringify({ op: 'pub', topic: 'check', data: 'still here' }));
      await sub.received(1);
      assert.deepEqual(sub.json()[0], { t: 'check', s: 1, d: 'still here' });
      sub.close();
      pub.close();
    } finally {
      for (const ws of flood) ws.terminate();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    }
  });
});
