import { type ChildProcess, spawn } from 'node:child_process';
import { AppBackend, json } from '../helpers/app-backend';
import { BrokerServer, freePort, sleep } from '../helpers/brokers';
import { FaultProxy } from '../helpers/fault-proxy';
import { MAIN } from '../helpers/gateway';
import { Trail } from './trail';

export const SECRET = 'chaos-secret';
export const NODE_TTL = 1500;
export const HEARTBEAT = NODE_TTL / 3;
export const WEBHOOK_DELAY = 300;
export const RULES = [
  { match: 'chat.*', presence: true, joinLeave: true },
  { match: 'room.*', presence: true, joinLeave: true, presenceBy: 'user', presenceGrace: 200 },
];

/**
 * A fault's span: applied at `from` (the SIGKILL, the broker's kill, the proxy's reset), lifted at `back`
 * (node started again, broker respawned, proxy accepting again), over at `to` (every node answered ready).
 */
export interface FaultWindow {
  readonly kind: 'kill' | 'broker restart' | 'partition';
  readonly what: string;
  /** The node's slot (kill, partition); null for the broker. */
  readonly node: number | null;
  readonly from: number;
  back: number;
  to: number;
}

/** A webhook event as received, in arrival order. */
export interface Hook {
  readonly name: string;
  readonly topic?: string;
  /** The event's id: a retried batch repeats it (webhooks are at least once, docs/backend.md). */
  readonly id?: string;
  /** When the sending node sent it (the request's time_ms): webhooks from different nodes may arrive out of that order. */
  readonly at: number;
  /** When the ledger decided it (Redis: `decided_ms`, on Redis's clock; an event taken over from a dead node's outbox is sent late). */
  readonly decided?: number;
  /** The sending node's slot (each node posts to its own path, /hooks/<slot>). */
  readonly node: number;
}

/** One gateway process in a fixed slot: same port and own fault proxy to the broker across restarts. */
export class Node {
  child: ChildProcess | null = null;
  /** Exits we did not cause (crashes), with their output tail. */
  readonly crashes: string[] = [];
  private output = '';
  private killing = false;
  maxRss = 0;
  /** Occupancy webhooks this slot's processes took over from dead nodes' outboxes: ended lives, and the live one's last sample. */
  private takenOverBefore = 0;
  private takenOverNow = 0;

  constructor(
    readonly slot: number,
    readonly port: number,
    readonly proxy: FaultProxy,
    private readonly flags: string[],
  ) {}

  get url(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  get http(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get alive(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the node, retried (a loaded machine may be slow to start one); a node that never comes up is a crash. */
  async start(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.startOnce();
      } catch (e) {
        await this.kill();
        if (attempt === 3) {
          this.crashes.push(`slot ${this.slot} did not start 3 times: ${(e as Error).message.slice(0, 1000)}`);
          throw e;
        }
      }
    }
  }

  /** At least this many (sampled with RSS: a process's count since its last sample is lost when it is killed). */
  get takenOver(): number {
    return this.takenOverBefore + this.takenOverNow;
  }

  private async startOnce(): Promise<void> {
    this.takenOverBefore += this.takenOverNow;
    this.takenOverNow = 0;
    this.output = '';
    this.killing = false;
    const child = spawn(process.execPath, [MAIN, 'serve', '--host', '127.0.0.1', '--port', String(this.port), '--log-level', 'warn', '--api-insecure', ...this.flags], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const keep = (d: Buffer) => (this.output = (this.output + d.toString()).slice(-8000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.on('exit', (code, signal) => {
      if (!this.killing) this.crashes.push(`slot ${this.slot} exited (code ${code}, signal ${signal}): ${this.output.slice(-2000)}`);
    });
    const deadline = Date.now() + 30_000;
    while ((await status(`${this.http}/healthz`)) !== 200) {
      if (!this.alive || Date.now() > deadline) throw new Error(`node ${this.slot} did not start (${this.alive ? 'no /healthz in 30 s' : `exit ${child.exitCode} ${child.signalCode}`}): ${this.output}`);
      await sleep(50);
    }
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (child === null || !this.alive) return;
    this.killing = true;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  async ready(): Promise<boolean> {
    return this.alive && (await status(`${this.http}/readyz`)) === 200;
  }

  /** RSS from the node's own metrics (kept as the maximum seen). */
  async sampleRss(): Promise<void> {
    if (!this.alive) return;
    const text = await fetch(`${this.http}/metrics`).then((r) => r.text(), () => '');
    const m = /^process_resident_memory_bytes (\d+)/m.exec(text);
    if (m !== null) this.maxRss = Math.max(this.maxRss, Number(m[1]));
    const t = /^wsgate_webhook_taken_over_total (\d+)/m.exec(text);
    if (t !== null) this.takenOverNow = Number(t[1]);
  }
}

export async function status(url: string): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** A broker, a webhook receiver, and three nodes each behind its own fault proxy. */
export class Cluster {
  readonly hooks: Hook[] = [];
  readonly trail = new Trail();

  private constructor(
    readonly kind: 'redis' | 'nats',
    readonly broker: BrokerServer,
    readonly app: AppBackend,
    readonly nodes: Node[],
  ) {}

  static async start(kind: 'redis' | 'nats', size = 3): Promise<Cluster> {
    const broker = await BrokerServer.start(kind, null, null, kind === 'nats');
    const app = await AppBackend.start();
    const nodes: Node[] = [];
    const cluster = new Cluster(kind, broker, app, nodes);
    for (let i = 0; i < size; i++) {
      app.on(`/hooks/${i}`, (r, res) => {
        const body = r.body as { time_ms: number; events: (Hook & { decided_ms?: number })[] };
        for (const e of body.events) if (e.name.startsWith('topic_')) cluster.trail.note(`hook ${e.name} ${e.topic} from node ${i} (decided ${new Date(body.time_ms).toISOString().slice(11, 23)})`);
        for (const e of body.events) cluster.hooks.push({ name: e.name, at: body.time_ms, node: i, ...(e.id === undefined ? {} : { id: e.id }), ...(e.decided_ms === undefined ? {} : { decided: e.decided_ms }), ...(e.topic === undefined ? {} : { topic: e.topic }) });
        json(res, 200, {});
      });
      const proxy = await FaultProxy.start(broker.port);
      const url = broker.url.replace(`:${broker.port}`, `:${proxy.port}`);
      const flags = ['--broker', url, '--jwt-secret', SECRET, '--topics', JSON.stringify(RULES), '--node-ttl', String(NODE_TTL), '--webhook-url', `${app.url}/hooks/${i}`, '--webhook-secret', 'chaos', '--webhook-delay', String(WEBHOOK_DELAY), '--max-commands-per-second', '0'];
      nodes.push(new Node(i, await freePort(), proxy, flags));
    }
    try {
      await Promise.all(nodes.map((n) => n.start()));
    } catch (e) {
      await cluster.stop();
      throw e;
    }
    return cluster;
  }

  /** Resolves once every node answers /readyz 200 (or after `ms`: false). */
  async allReady(ms = 30_000): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if ((await Promise.all(this.nodes.map((n) => n.ready()))).every(Boolean)) return true;
      await sleep(50);
    }
    return false;
  }

  live(): Node[] {
    return this.nodes.filter((n) => n.alive);
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill()));
    await Promise.all(this.nodes.map((n) => n.proxy.close()));
    await this.app.stop();
    await this.broker.stop();
  }
}
