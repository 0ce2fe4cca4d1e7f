/**
 * Cross-node fan-out: publish on node A, subscribers spread over nodes A and B, through NATS and Redis,
 * next to the single-node (memory broker) figures. Standalone:
 *
 *   node dist/bench/scenarios/cross-node.js [--brokers memory,nats,redis] [--subs 100] [--rate 1000] [--seconds 5]
 *
 * Starts its own nats-server / redis-server (test/helpers/brokers.ts) and gateway child processes on
 * loopback. Two phases per case: a fixed publish rate for latency (publish stamp → subscriber receipt),
 * then a closed loop (at most `window` messages not yet delivered everywhere) for deliveries/s.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { packr, unpackr } from '../../src/protocol/msgpack';
import { BrokerServer, freePort, sleep, waitForPort } from '../../test/helpers/brokers';

type BrokerKind = 'memory' | 'nats' | 'redis';

interface CaseResult {
  readonly name: string;
  readonly deliveriesPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

const TOPIC = 'bench.cross';
const MAIN = join(__dirname, '..', '..', 'src', 'cli', 'main.js');
const now = (): number => performance.timeOrigin + performance.now();

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? def : (process.argv[i + 1] ?? def);
}

async function startGateway(broker: string): Promise<{ proc: ChildProcess; port: number }> {
  const port = await freePort();
  const args = ['serve', '--host', '127.0.0.1', '--port', String(port), '--broker', broker, '--client-publish', '--log-level', 'warn', '--max-backpressure', String(64 * 1024 * 1024)];
  const proc = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForPort(port);
  for (let i = 0; i < 100 && (await fetch(`http://127.0.0.1:${port}/readyz`)).status !== 200; i++) await sleep(50);
  return { proc, port };
}

/** Subscribers record the latency of every delivery (publish stamp in the data) into a sample buffer. */
class Subscribers {
  readonly sockets: WebSocket[] = [];
  delivered = 0;
  recording = false;
  private samples = new Float64Array(4_000_000);
  private n = 0;

  async add(port: number, count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?topics=${TOPIC}`, 'wsgate.msgpack');
      ws.binaryType = 'nodebuffer';
      ws.on('message', (data: Buffer) => {
        const m = unpackr.unpack(data) as { t?: string; d?: { ts: number } };
        if (m.t === undefined || m.d === undefined) return;
        this.delivered++;
        if (this.recording && this.n < this.samples.length) this.samples[this.n++] = now() - m.d.ts;
      });
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      this.sockets.push(ws);
    }
  }

  percentiles(): { p50: number; p99: number; max: number } {
    const s = this.samples.subarray(0, this.n).sort();
    const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
    return { p50: at(0.5), p99: at(0.99), max: s[s.length - 1] ?? NaN };
  }

  close(): void {
    for (const ws of this.sockets) ws.terminate();
  }
}

async function connectPublisher(port: number): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, 'wsgate.msgpack');
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return ws;
}

const publish = (ws: WebSocket): void => ws.send(packr.pack({ op: 'pub', topic: TOPIC, data: { ts: now(), pad: 'x'.repeat(64) } }));

async function runCase(name: string, brokerUrl: string, split: boolean, subs: number, rate: number, seconds: number, window: number): Promise<CaseResult> {
  const a = await startGateway(brokerUrl);
  const b = split ? await startGateway(brokerUrl) : null;
  const s = new Subscribers();
  try {
    await s.add(a.port, split ? Math.ceil(subs / 2) : subs);
    if (b !== null) await s.add(b.port, Math.floor(subs / 2));
    const pub = await connectPublisher(a.port);
    // Warm-up: until every subscriber's subscription is live (cluster subs complete asynchronously).
    for (let i = 0; i < 200; i++) {
      const before = s.delivered;
      publish(pub);
      await sleep(20);
      if (s.delivered - before === subs) break;
    }
    await sleep(200);

    // Phase 1: fixed rate, latency.
    s.recording = true;
    const perTick = Math.max(1, Math.round(rate / 100));
    const end1 = Date.now() + seconds * 1000;
    while (Date.now() < end1) {
      for (let i = 0; i < perTick; i++) publish(pub);
      await sleep(10);
    }
    await sleep(500);
    s.recording = false;
    const lat = s.percentiles();

    // Phase 2: closed loop, throughput (bounded by messages not yet delivered to every subscriber).
    const start = s.delivered;
    let sent = 0;
    const t0 = performance.now();
    const end2 = t0 + seconds * 1000;
    while (performance.now() < end2) {
      const inFlight = sent - (s.delivered - start) / subs;
      for (let i = 0; i < Math.min(100, window - inFlight); i++, sent++) publish(pub);
      await new Promise((r) => setImmediate(r));
    }
    const deliveriesPerSec = ((s.delivered - start) * 1000) / (performance.now() - t0);
    pub.terminate();
    return { name, deliveriesPerSec, p50Ms: lat.p50, p99Ms: lat.p99, maxMs: lat.max };
  } finally {
    s.close();
    for (const g of [a, b]) g?.proc.kill('SIGKILL');
  }
}

async function main(): Promise<void> {
  const kinds = arg('brokers', 'memory,nats,redis').split(',') as BrokerKind[];
  const subs = Number(arg('subs', '100'));
  const rate = Number(arg('rate', '1000'));
  const seconds = Number(arg('seconds', '5'));
  const window = Number(arg('window', '500'));
  const results: CaseResult[] = [];
  for (const kind of kinds) {
    if (kind === 'memory') {
      results.push(await runCase('single node (memory)', 'memory', false, subs, rate, seconds, window));
      continue;
    }
    const server = await BrokerServer.start(kind);
    try {
      results.push(await runCase(`${kind}: A+B`, server.url, true, subs, rate, seconds, window));
      // All subscribers on the publishing node: the cost of delivering own publishes via the broker echo.
      results.push(await runCase(`${kind}: A only (echo)`, server.url, false, subs, rate, seconds, window));
    } finally {
      await server.stop();
    }
  }
  const base = results.find((r) => r.name.startsWith('single'));
  console.log(`cross-node fan-out: ${subs} msgpack subscribers, ${rate} msg/s for latency, closed loop (window ${window}) for throughput, ${seconds} s each`);
  console.log('| case | deliveries/s | vs single | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|');
  for (const r of results) {
    const vs = base === undefined ? '' : `${((r.deliveriesPerSec / base.deliveriesPerSec - 1) * 100).toFixed(1)}%`;
    console.log(`| ${r.name} | ${Math.round(r.deliveriesPerSec)} | ${vs} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${r.maxMs.toFixed(2)} |`);
  }
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (e: Error) => {
      console.error(e.stack ?? e.message);
      process.exit(1);
    },
  );
}
