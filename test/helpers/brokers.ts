import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load';
import { createLogger } from '../../src/log';
import { Gateway } from '../../src/server/gateway';

/**
 * Cluster-test helpers. Each test file starts its own nats-server / redis-server (BrokerServer, shared
 * with the bench's crossnode scenario) on free loopback ports with temp dirs, and kills them by PID.
 */
import { after, before } from 'node:test';
import { BrokerServer, requireBinary } from '../../bench/lib/brokers';

export { BrokerServer, requireBinary } from '../../bench/lib/brokers';

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

/**
 * One in-process gateway node on a free loopback port. Cluster tests publish windows of hundreds of
 * messages from one socket to check ordering, so the per-connection command rate is off here (its own
 * tests are in guard-commands.test.ts).
 */
export async function startNode(broker: string, extra: readonly string[] = []): Promise<{ gateway: Gateway; port: number; url: string }> {
  const argv = ['--host', '127.0.0.1', '--port', '0', '--broker', broker, '--client-publish', '--max-commands-per-second', '0', '--log-level', 'silent', '--drain-window', '200', '--drain-timeout', '3000', ...extra];
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

/**
 * Two in-process nodes on a fresh broker for the enclosing describe block: started (brokers ready, each
 * node knowing the other over the control bus) in `before`, closed in `after`. The array fills in `before`.
 */
export function clusterOfTwo(kind: 'redis' | 'nats', flags: readonly string[]): { gateway: Gateway; url: string; port: number }[] {
  const nodes: { gateway: Gateway; url: string; port: number }[] = [];
  let broker: BrokerServer;
  before(async () => {
    broker = await BrokerServer.start(kind);
    for (let i = 0; i < 2; i++) nodes.push(await startNode(broker.url, flags));
    await eventually('brokers up', () => nodes.every((n) => n.gateway.broker.ready()));
    await eventually('nodes know each other', () => nodes.every((n) => n.gateway.bus.nodes === 2));
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.gateway.close()));
    await broker.stop();
  });
  return nodes;
}

/**
 * A NATS cluster of `n` nats-server processes with JetStream on loopback, joined by routes, each with
 * its own temp store dir; killed by PID. JetStream needs a meta leader before it answers: start() waits
 * for every server's /jsz to report one.
 */
export class NatsCluster {
  private readonly procs: (ChildProcess | null)[] = [];

  private constructor(
    private readonly ports: readonly number[],
    private readonly routePorts: readonly number[],
    private readonly monitorPorts: readonly number[],
    private readonly dirs: readonly string[],
  ) {}

  static async start(n: number): Promise<NatsCluster> {
    requireBinary('nats');
    const ports: number[] = [];
    const routes: number[] = [];
    const monitors: number[] = [];
    const dirs: string[] = [];
    for (let i = 0; i < n; i++) {
      ports.push(await freePort());
      routes.push(await freePort());
      monitors.push(await freePort());
      dirs.push(mkdtempSync(join(tmpdir(), `wsgate-natsc${i}-`)));
    }
    const c = new NatsCluster(ports, routes, monitors, dirs);
    try {
      for (let i = 0; i < n; i++) c.procs.push(c.spawn(i));
      for (const p of ports) await waitForPort(p);
      await eventually('JetStream meta leader', async () => (await Promise.all(monitors.map((m) => metaLeader(m)))).every(Boolean), 30_000);
    } catch (e) {
      await c.stop();
      throw e;
    }
    return c;
  }

  url(i: number): string {
    return `nats://127.0.0.1:${this.ports[i] as number}`;
  }

  private spawn(i: number): ChildProcess {
    const routes = this.routePorts.filter((_, j) => j !== i).map((p) => `nats://127.0.0.1:${p}`).join(',');
    const args = ['-a', '127.0.0.1', '-p', String(this.ports[i]), '-m', String(this.monitorPorts[i]), '-js', '--store_dir', this.dirs[i] as string];
    args.push('--server_name', `n${i}`, '--cluster_name', 'wsgate-test', '--cluster', `nats://127.0.0.1:${this.routePorts[i] as number}`, '--routes', routes);
    return spawn(requireBinary('nats'), args, { stdio: 'ignore' });
  }

  /** SIGKILL of server `i` by PID, waiting for its exit. */
  async kill(i: number): Promise<void> {
    const p = this.procs[i];
    this.procs[i] = null;
    if (p === null || p === undefined || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    process.kill(p.pid as number, 'SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    for (let i = 0; i < this.procs.length; i++) await this.kill(i);
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
  }
}

async function metaLeader(monitorPort: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${monitorPort}/jsz`);
    const body = (await res.json()) as { meta_cluster?: { leader?: string } };
    return (body.meta_cluster?.leader ?? '') !== '';
  } catch {
    return false;
  }
}
