import { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, spawnPinned, waitForPort } from './procs';

/**
 * Real brokers for the crossnode bench scenario and the cluster tests: a nats-server / redis-server on
 * free loopback ports with a temp dir (never the machine's 4222/6379), optionally pinned to a core,
 * stopped by PID.
 */

const BINARIES = {
  nats: { path: process.env.NATS_SERVER ?? '/usr/sbin/nats-server', pkg: 'nats-server' },
  redis: { path: process.env.REDIS_SERVER ?? '/usr/bin/redis-server', pkg: 'redis-server' },
} as const;

export type BrokerKind = keyof typeof BINARIES;

/** Fails loudly (not a skip) when a broker binary is missing: CI must run what needs it. */
export function requireBinary(kind: BrokerKind): string {
  const { path, pkg } = BINARIES[kind];
  if (!existsSync(path)) {
    throw new Error(`${path} not found: a real ${kind} server is needed. Install the Debian package "${pkg}" (apt-get install ${pkg}) or set ${kind === 'nats' ? 'NATS_SERVER' : 'REDIS_SERVER'} to its path.`);
  }
  return path;
}

/** Server-side TLS (PEM files): the broker then accepts only TLS clients presenting a certificate signed by `ca`. */
export interface BrokerServerTls {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

export class BrokerServer {
  private proc: ChildProcess | null = null;
  private readonly dir: string;

  private constructor(
    readonly kind: BrokerKind,
    readonly port: number,
    /** NATS monitoring port (for /subsz), 0 for Redis. */
    readonly monitorPort: number,
    /** Core to pin the server to with taskset (null: not pinned). */
    private readonly cpu: number | null,
    private readonly tls: BrokerServerTls | null,
    /** NATS only: with JetStream (KV), which webhook occupancy uses. */
    private readonly jetstream: boolean,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), `wsgate-${kind}-`));
  }

  static async start(kind: BrokerKind, cpu: number | null = null, tls: BrokerServerTls | null = null, jetstream = false): Promise<BrokerServer> {
    requireBinary(kind);
    const s = new BrokerServer(kind, await freePort(), kind === 'nats' ? await freePort() : 0, cpu, tls, jetstream);
    try {
      await s.spawn();
    } catch (err) {
      await s.stop();
      throw err;
    }
    return s;
  }

  get url(): string {
    const scheme = this.tls === null ? this.kind : this.kind === 'nats' ? 'tls' : 'rediss';
    return `${scheme}://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Starts the server (again, after `kill`) on the same port and dir. */
  async spawn(): Promise<void> {
    const t = this.tls;
    const args =
      this.kind === 'nats'
        ? ['-a', '127.0.0.1', '-p', String(this.port), '-m', String(this.monitorPort), '--store_dir', this.dir, ...(this.jetstream ? ['-js'] : []), ...(t === null ? [] : ['--tlsverify', '--tlscert', t.cert, '--tlskey', t.key, '--tlscacert', t.ca])]
        : [
            ...(t === null ? ['--port', String(this.port)] : ['--port', '0', '--tls-port', String(this.port), '--tls-cert-file', t.cert, '--tls-key-file', t.key, '--tls-ca-cert-file', t.ca, '--tls-auth-clients', 'yes']),
            ...['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, '--protected-mode', 'no'],
          ];
    const proc = spawnPinned(this.cpu, BINARIES[this.kind].path, args, ['ignore', 'ignore', 'pipe']);
    this.proc = proc;
    proc.once('exit', () => {
      if (this.proc === proc) this.proc = null;
    });
    await waitForPort(this.port, proc, 10_000);
  }

  /** SIGKILL by PID, waiting for the exit (a crash, not a polite shutdown). */
  async kill(): Promise<void> {
    const proc = this.proc;
    if (proc === null || proc.exitCode !== null || proc.signalCode !== null) return;
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
