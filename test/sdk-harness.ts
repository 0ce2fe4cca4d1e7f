import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server, type Socket, connect } from 'node:net';
import { TEST_SERVE_FLAGS, sleep, waitFor } from './helpers/gateway';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { type ClientOptions, type GapEvent, type MessageEvent, type StateEvent, WsgateClient, type WsgateError } from '../src/client/sdk';
import { Payload } from '../src/protocol/payload';
import type { Gateway } from '../src/server/gateway';

// Helpers of the SDK and browser tests, self-contained so they do not depend on other suites' helpers.

export { freePort, sleep, startGateway, waitFor } from './helpers/gateway';
export type { TestGateway as InProcessGateway } from './helpers/gateway';

/** A gateway as a child process on a given port (`node dist/src/cli/main.js serve`); killed by PID. */
export class ChildGateway {
  private out = '';
  private constructor(readonly child: ChildProcess, readonly port: number) {
    child.stdout?.on('data', (d: Buffer) => (this.out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.out += d.toString()));
  }

  static async start(port: number, flags: readonly string[] = []): Promise<ChildGateway> {
    const main = path.join(__dirname, '..', 'src', 'cli', 'main.js');
    const child = spawn(process.execPath, [main, 'serve', '--host', '127.0.0.1', '--port', String(port), '--log-level', 'info', ...TEST_SERVE_FLAGS, ...flags], { stdio: ['ignore', 'pipe', 'pipe'] });
    const g = new ChildGateway(child, port);
    const deadline = Date.now() + 10_000;
    while (!g.out.includes('"listening"')) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`gateway did not start: ${g.out}`);
      await sleep(20);
    }
    return g;
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** Sends SIGTERM (drain) and waits for the exit. */
  async drain(): Promise<void> {
    if (this.exited) return;
    this.child.kill('SIGTERM');
    await once(this.child, 'exit');
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    this.child.kill('SIGKILL');
    await once(this.child, 'exit');
  }
}

/**
 * A loopback TCP proxy in front of a gateway, so a test can cut connections abruptly (no close frame,
 * as when a phone changes networks) or stop reading from the gateway (a client that stalls).
 */
export class TcpProxy {
  private readonly pairs = new Set<{ client: Socket; upstream: Socket }>();
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<TcpProxy> {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const proxy = new TcpProxy(server, (server.address() as { port: number }).port);
    server.on('connection', (client) => {
      const upstream = connect(targetPort, '127.0.0.1');
      const pair = { client, upstream };
      proxy.pairs.add(pair);
      client.pipe(upstream);
      upstream.pipe(client);
      const drop = () => {
        proxy.pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('close', drop).on('error', drop);
      upstream.on('close', drop).on('error', drop);
    });
    return proxy;
  }

  get connections(): number {
    return this.pairs.size;
  }

  /** Destroys every proxied connection at once: both peers see a reset, nobody sends a close frame. */
  cut(): void {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  /**
   * The current connections stop reading from the gateway (its kernel buffers fill, then uWS
   * backpressure builds) and forward nothing more to the client; new connections flow normally.
   */
  stall(): void {
    for (const { upstream } of this.pairs) {
      upstream.unpipe();
      upstream.pause();
    }
  }

  /** Stalled connections forward again, starting with everything buffered meanwhile. */
  resume(): void {
    for (const { client, upstream } of this.pairs) {
      upstream.pipe(client);
      upstream.resume();
    }
  }

  close(): Promise<void> {
    this.cut();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** Publishes into an in-process gateway the way the demo does (through its broker). */
export class Publisher {
  private readonly payload = new Payload();
  private timer: NodeJS.Timeout | null = null;
  sent = 0;

  constructor(
    private readonly gw: Gateway,
    readonly topic: string,
  ) {}

  publish(data: unknown = { n: this.sent + 1 }): void {
    const r = this.gw.broker.publish(this.topic, this.payload.setValue(data, false), 'http', performance.now());
    if (typeof r !== 'number') throw new Error(`publish failed: ${JSON.stringify(r)}`);
    this.sent++;
  }

  /** Publishes `perTick` messages every `everyMs` until stop(): "continuous publishing". */
  start(everyMs = 2, perTick = 1): void {
    this.timer = setInterval(() => {
      for (let i = 0; i < perTick; i++) this.publish();
    }, everyMs);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}

/** A WsgateClient with every event recorded. */
export class Recorder {
  readonly client: WsgateClient;
  readonly messages: MessageEvent[] = [];
  readonly gaps: GapEvent[] = [];
  readonly states: StateEvent[] = [];
  readonly errors: WsgateError[] = [];

  constructor(options: ClientOptions) {
    this.client = new WsgateClient(options);
    this.client.on('message', (m) => this.messages.push(m));
    this.client.on('gap', (g) => this.gaps.push(g));
    this.client.on('state', (s) => this.states.push(s));
    this.client.on('error', (e) => this.errors.push(e));
  }

  seqs(topic: string): number[] {
    return this.messages.filter((m) => m.topic === topic).map((m) => m.seq);
  }

  opens(): number {
    return this.states.filter((s) => s.state === 'open').length;
  }

  async untilOpen(count = 1, ms = 5000): Promise<void> {
    await waitFor(() => this.opens() >= count, ms, `${count} open state(s)`);
  }

  async untilSeq(topic: string, seq: number, ms = 10_000): Promise<void> {
    await waitFor(() => this.messages.some((m) => m.topic === topic && m.seq >= seq), ms, `${topic} seq ${seq}`);
  }
}

/** Asserts-friendly: the first index where `seqs` is not `from, from+1, …`, or -1. */
export function firstBreak(seqs: readonly number[], from: number): number {
  return seqs.findIndex((s, i) => s !== from + i);
}
