import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load';
import { createLogger } from '../../src/log';
import { Gateway } from '../../src/server/gateway';

/**
 * Real brokers for cluster tests: each test file starts its own nats-server / redis-server on free
 * loopback ports with temp dirs (never the machine's 4222/6379), and kills them by PID.
 */

const BINARIES = {
  nats: { path: process.env.NATS_SERVER ?? '/usr/sbin/nats-server', pkg: 'nats-server' },
  redis: { path: process.env.REDIS_SERVER ?? '/usr/bin/redis-server', pkg: 'redis-server' },
} as const;

/** Fails loudly (not a skip) when a broker binary is missing: CI must run these tests. */
export function requireBinary(kind: keyof typeof BINARIES): string {
  const { path, pkg } = BINARIES[kind];
  if (!existsSync(path)) {
    throw new Error(`${path} not found: cluster tests need a real ${kind} server. Install the Debian package "${pkg}" (apt-get install ${pkg}) or set ${kind === 'nats' ? 'NATS_SERVER' : 'REDIS_SERVER'} to its path.`);
  }
  return path;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves once something accepts TCP on the port (or throws after `ms`). */
export async function waitForPort(port: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on 127.0.0.1:${port} after ${ms} ms`);
    await sleep(50);
  }
}

export class BrokerServer {
  private proc: ChildProcess | null = null;
  private readonly dir: string;

  private constructor(
    readonly kind: 'nats' | 'redis',
    readonly port: number,
    /** NATS monitoring port (for /subsz), 0 for Redis. */
    readonly monitorPort: number,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), `wsgate-${kind}-`));
  }

  static async start(kind: 'nats' | 'redis'): Promise<BrokerServer> {
    requireBinary(kind);
    const s = new BrokerServer(kind, await freePort(), kind === 'nats' ? await freePort() : 0);
    await s.spawn();
    return s;
  }

  get url(): string {
    return `${this.kind}://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  async spawn(): Promise<void> {
    const args =
      this.kind === 'nats'
        ? ['-a', '127.0.0.1', '-p', String(this.port), '-m', String(this.monitorPort), '--store_dir', this.dir]
        : ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, '--protected-mode', 'no'];
    const proc = spawn(BINARIES[this.kind].path, args, { stdio: 'ignore' });
    this.proc = proc;
    proc.once('exit', () => {
      if (this.proc === proc) this.proc = null;
    });
    await waitForPort(this.port);
  }

  /** SIGKILL by PID, waiting for the exit (a crash, not a polite shutdown). */
  async kill(): Promise<void> {
    const proc = this.proc;
    if (proc === null || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    process.kill(proc.pid as number, 'SIGKILL');
    await exited;
    this.proc = null;
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** NATS only: how many subscriptions the server holds on `subject` (monitoring endpoint). */
  async natsSubscriptions(subject: string): Promise<number> {
    const res = await fetch(`http://127.0.0.1:${this.monitorPort}/subsz?subs=1&limit=100000`);
    const body = (await res.json()) as { subscriptions_list?: { subject: string }[] };
    return (body.subscriptions_list ?? []).filter((s) => s.subject === subject).length;
  }
}

/** One in-process gateway node on a free loopback port. */
export async function startNode(broker: string, extra: readonly string[] = []): Promise<{ gateway: Gateway; port: number; url: string }> {
  const argv = ['--host', '127.0.0.1', '--port', '0', '--broker', broker, '--client-publish', '--log-level', 'silent', '--drain-window', '200', '--drain-timeout', '3000', ...extra];
  const gateway = new Gateway(loadConfig({ argv, env: {} }), createLogger('silent'));
  const port = await gateway.start();
  return { gateway, port, url: `ws://127.0.0.1:${port}/ws` };
}

/** Polls `check` until it holds (or throws after `ms` with `what`). */
export async function eventually(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}
