import { type Socket, connect } from 'node:net';
import WebSocket from 'ws';
import { cpuSeconds } from '../lib/procs';
import { SERVERS, startServer, stopServer } from '../lib/servers';
import { perServer, result, row, sleep } from './common';
import type { Scenario } from './types';

type Door = 'websocket' | 'sse';

interface DoorRun {
  /** Counted by the server (wsgate_deliveries_total); `receivedPerSecond` by the clients. */
  deliveriesPerSecond: number;
  receivedPerSecond: number;
  expectedPerSecond: number;
  serverCpuPercent: number;
  serverCpuUsPerDelivery: number;
}

/** Subscribers of one door on `topic`; `received()` counts deliveries so far. */
interface Subscribers {
  received(): number;
  close(): void;
}

function wsSubscribers(port: number, n: number, topic: string): Promise<Subscribers> {
  let count = 0;
  const sockets: WebSocket[] = [];
  const opened = Array.from({ length: n }, () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?topics=${topic}`);
    sockets.push(ws);
    ws.on('message', () => count++);
    return new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
  });
  return Promise.all(opened).then(() => ({ received: () => count, close: () => sockets.forEach((s) => s.terminate()) }));
}

/** Raw HTTP SSE readers: a delivery is a `data: ` line (an event of this scenario has one). */
function sseSubscribers(port: number, n: number, topic: string): Promise<Subscribers> {
  let count = 0;
  const sockets: Socket[] = [];
  const opened = Array.from({ length: n }, () => {
    const s = connect(port, '127.0.0.1');
    sockets.push(s);
    s.write(`GET /sse?topics=${topic} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`);
    let carry = '';
    return new Promise<void>((resolve, reject) => {
      s.on('data', (chunk: Buffer) => {
        // Counting by string search: the client must stay far cheaper than the server it measures.
        const text = carry + chunk.toString('latin1');
        let at = text.indexOf('\ndata: {"t"');
        while (at >= 0) {
          count++;
          at = text.indexOf('\ndata: {"t"', at + 10);
        }
        carry = text.slice(-10);
        if (text.includes('event: subscribed')) resolve();
      });
      s.once('error', reject);
    });
  });
  return Promise.all(opened).then(() => ({ received: () => count, close: () => sockets.forEach((s) => s.destroy()) }));
}

/**
 * Publishes `rate` messages/s through POST /publish in 10 ms batches until stopped: open loop (a batch
 * leaves on time whatever the previous one is doing), at most 16 requests in flight.
 */
function publisher(port: number, topic: string, rate: number, bytes: number): { stop(): Promise<void> } {
  const perTick = Math.max(1, Math.round(rate / 100));
  const data = 'x'.repeat(bytes);
  const body = JSON.stringify(Array.from({ length: perTick }, () => ({ topic, data })));
  const inFlight = new Set<Promise<unknown>>();
  const timer = setInterval(() => {
    if (inFlight.size >= 16) return;
    const r = fetch(`http://127.0.0.1:${port}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then((res) => res.arrayBuffer(), () => undefined);
    inFlight.add(r);
    void r.then(() => inFlight.delete(r));
  }, 10);
  return {
    stop: async () => {
      clearInterval(timer);
      await Promise.all(inFlight);
    },
  };
}

/** The server's own count of subscribers reached (wsgate_deliveries_total). */
async function serverDeliveries(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('wsgate_deliveries_total '));
  return Number(line?.split(' ')[1] ?? NaN);
}

/**
 * The SSE door beside the WebSocket door at the same load: the same subscribers on one topic, the same
 * publish rate through the HTTP API; server CPU per delivery from /proc (a fixed load, below what either
 * door or the client saturates).
 */
export const sse: Scenario = {
  name: 'sse',
  title: 'SSE door beside the WebSocket door: deliveries/s and server CPU per delivery at the same load',
  inDefault: false,
  async run(ctx) {
    const q = ctx.opts.quick;
    const p = { subscribers: q ? 20 : 200, publishesPerSecond: q ? 100 : 200, payloadBytes: 64, warmupMs: 1000, durationMs: q ? 1000 : 5000 };
    const doors: Door[] = ['websocket', 'sse'];
    const outcomes = await perServer<DoorRun, Door>(ctx, doors, async (door) => {
      const server = await startServer(SERVERS.wsgate);
      try {
        const subs = await (door === 'sse' ? sseSubscribers : wsSubscribers)(server.port, p.subscribers, 'bench');
        const pub = publisher(server.port, 'bench', p.publishesPerSecond, p.payloadBytes);
        await sleep(p.warmupMs);
        const s0 = await serverDeliveries(server.port);
        const c0 = cpuSeconds(server.pid);
        const d0 = subs.received();
        const t0 = performance.now();
        await sleep(p.durationMs);
        const seconds = (performance.now() - t0) / 1000;
        const cpu = cpuSeconds(server.pid) - c0;
        const received = subs.received() - d0;
        const delivered = (await serverDeliveries(server.port)) - s0;
        await pub.stop();
        subs.close();
        return {
          deliveriesPerSecond: Math.round(delivered / seconds),
          receivedPerSecond: Math.round(received / seconds),
          expectedPerSecond: p.publishesPerSecond * p.subscribers,
          serverCpuPercent: Math.round((cpu / seconds) * 1000) / 10,
          serverCpuUsPerDelivery: delivered === 0 ? 0 : Math.round((cpu / delivered) * 1e7) / 10,
        };
      } finally {
        await stopServer(server);
      }
    });
    return {
      ...result('sse', this.title, p, outcomes, [
        row(outcomes, 'deliveries/s', '/s', 'higher', (r) => r.deliveriesPerSecond),
        row(outcomes, 'received by the clients/s', '/s', 'higher', (r) => r.receivedPerSecond),
        row(outcomes, 'offered deliveries/s', '/s', 'higher', (r) => r.expectedPerSecond),
        row(outcomes, 'server CPU', '% of a core', 'lower', (r) => r.serverCpuPercent),
        row(outcomes, 'server CPU per delivery', 'µs', 'lower', (r) => r.serverCpuUsPerDelivery),
      ], [
        'One wsgate process per door; subscribers and the HTTP publisher run in the bench process. A WebSocket delivery is handed to uWS once per publish (native fan-out); an SSE delivery is queued per stream in JS (uWS has no topics for HTTP responses) and each stream is written once per event-loop turn.',
      ]),
      ratioBase: 'websocket',
    };
  },
};
