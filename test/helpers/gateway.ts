import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import path from 'node:path';
import WebSocket from 'ws';
import { loadConfig } from '../../src/config/load';
import { createLogger } from '../../src/log';
import type { Config } from '../../src/config/schema';
import { Gateway } from '../../src/server/gateway';
import { Supervisor } from '../../src/workers/supervisor';

/** A gateway in this process on a free loopback port. */
export interface TestGateway {
  readonly gw: Gateway;
  readonly port: number;
  readonly ws: string;
  readonly http: string;
  stop(): Promise<void>;
}

/**
 * Worker threads the behaviour tests run with (`npm run test:workers` sets WSGATE_TEST_WORKERS=2, then 3);
 * 1 (unset): a single-thread gateway as `serve` runs it.
 */
export const TEST_WORKERS = Number(process.env.WSGATE_TEST_WORKERS ?? '1') || 1;
/** Set on a test that reads one gateway's internals (`gw.hub`, `gw.stats`…): none exist in workers mode. */
export const SINGLE_THREAD_ONLY = TEST_WORKERS > 1 ? 'reads single-process internals (gw.*): not in workers mode' : false;

export async function startGateway(flags: readonly string[] = []): Promise<TestGateway> {
  const config = loadConfig({ argv: ['--host', '127.0.0.1', '--port', '0', '--log-level', 'silent', ...flags], env: {} });
  if (TEST_WORKERS > 1) return startWorkers(config, TEST_WORKERS);
  const gw = new Gateway(config, createLogger('silent'));
  const port = await gw.start();
  return { gw, port, ws: `ws://127.0.0.1:${port}/ws`, http: `http://127.0.0.1:${port}`, stop: () => gw.close() };
}

/**
 * The same gateway as `serve --workers n` runs it (the supervisor in this process, n worker threads, the
 * acceptor on one port). There is no Gateway object to read: `gw` throws, naming the test's assumption.
 */
async function startWorkers(config: Config, workers: number): Promise<TestGateway> {
  const supervisor = new Supervisor(config, createLogger('silent'), workers);
  const port = await supervisor.start();
  return {
    get gw(): Gateway {
      throw new Error(`the test reads one gateway's internals; with --workers ${workers} there is none (mark it SINGLE_THREAD_ONLY)`);
    },
    port,
    ws: `ws://127.0.0.1:${port}/ws`,
    http: `http://127.0.0.1:${port}`,
    stop: () => supervisor.close(),
  };
}

/**
 * Test gateways run `serve` with the HTTP API open (no --api-key: tests publish with plain fetch);
 * a test of the refusal itself passes its own flags to spawnSync.
 */
export const TEST_SERVE_FLAGS: readonly string[] = ['--api-insecure'];

export const MAIN = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** A gateway as a child process (for signals and exit codes); killed by PID in stop(). */
export interface ChildGateway {
  readonly child: ChildProcess;
  readonly port: number;
  readonly output: () => string;
  /** Settles with the exit code when the process exits (recorded from spawn, so it is never missed). */
  readonly exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** `startMs`: how long to wait for "listening" (worker threads start slower on a loaded machine). */
export async function spawnGateway(flags: readonly string[] = [], env: NodeJS.ProcessEnv = {}, startMs = 10_000): Promise<ChildGateway> {
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN, 'serve', '--host', '127.0.0.1', '--port', String(port), '--log-level', 'info', ...TEST_SERVE_FLAGS, ...flags], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + startMs;
  while (!out.includes('"listening"')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`gateway did not start: ${out}`);
    await sleep(25);
  }
  return {
    child,
    port,
    output: () => out,
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until it returns true or `ms` passes. */
export async function waitFor(check: () => boolean | Promise<boolean>, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A raw `ws` client collecting every message; for inspecting exact frames and close codes. */
export class RawClient {
  readonly messages: (string | Buffer)[] = [];
  closeCode: number | null = null;
  closeReason = '';
  /** The client-side error, if any (explains a 1006). */
  error = '';

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => this.messages.push(isBinary ? data : data.toString('utf8')));
    ws.on('error', (e) => (this.error = e.message));
    ws.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
    });
  }

  /** `options`: e.g. `localAddress` to connect from another loopback address (127.0.0.2, …). */
  static async open(url: string, protocols?: string | string[], headers: Record<string, string> = {}, options: WebSocket.ClientOptions = {}): Promise<RawClient> {
    const ws = new WebSocket(url, protocols, { ...options, headers });
    const c = new RawClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return c;
  }

  /** JSON messages parsed. */
  json(): Record<string, unknown>[] {
    return this.messages.filter((m): m is string => typeof m === 'string').map((m) => JSON.parse(m) as Record<string, unknown>);
  }

  /** Waits until `total` messages have arrived since the connection opened. */
  async received(total: number, ms = 5000): Promise<void> {
    await waitFor(() => this.messages.length >= total, ms, `${total} message(s)`);
  }

  async closed(ms = 5000): Promise<number> {
    await waitFor(() => this.closeCode !== null, ms, 'close');
    return this.closeCode as number;
  }

  close(): void {
    this.ws.terminate();
  }
}

/** Fetches /metrics and returns the value of one sample line (e.g. 'wsgate_errors_total{code="bad_frame"}'). */
export async function metric(http: string, sample: string): Promise<number> {
  const text = await (await fetch(`${http}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(sample + ' '));
  return line === undefined ? NaN : Number(line.slice(sample.length + 1));
}
