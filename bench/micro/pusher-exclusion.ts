/**
 * What sender exclusion costs uWS, in-process: a sender socket holding `held` topics publishes a frame to
 * topics that each have `subsPerTopic` other subscribers, three ways — `ws.publish` from the sender (what
 * the Pusher door does for client events and `socket_id` exclusion), `ws.unsubscribe` + `app.publish` +
 * `ws.subscribe` around it, and a bare `app.publish` (no exclusion, the floor). Only the calls are timed:
 * uWS writes to the sockets when the event-loop turn ends, the same for all three.
 *
 *   node dist/bench/micro/pusher-exclusion.js [held=1000] [topics=100] [subsPerTopic=10] [publishes=20000]
 */
import { App, type TemplatedApp, type WebSocket, us_listen_socket_close, type us_listen_socket } from 'uWebSockets.js';
import WebSocketClient from 'ws';

type Way = 'ws.publish' | 'unsubscribe+app.publish+subscribe' | 'app.publish';
const WAYS: readonly Way[] = ['ws.publish', 'unsubscribe+app.publish+subscribe', 'app.publish'];

interface Setup {
  app: TemplatedApp;
  listen: us_listen_socket;
  sender: WebSocket<{ sender: boolean }>;
  clients: WebSocketClient[];
}

async function setup(held: number, topics: number, subsPerTopic: number): Promise<Setup> {
  let sender: WebSocket<{ sender: boolean }> | null = null;
  let opened = 0;
  const app = App().ws<{ sender: boolean; topic: number }>('/*', {
    upgrade: (res, req, ctx) => {
      const q = new URLSearchParams(req.getQuery() ?? '');
      const topic = Number(q.get('t') ?? '-1');
      res.upgrade({ sender: topic < 0, topic }, req.getHeader('sec-websocket-key'), '', req.getHeader('sec-websocket-extensions'), ctx);
    },
    open: (ws) => {
      const d = ws.getUserData();
      if (d.sender) {
        for (let t = 0; t < held; t++) ws.subscribe(`t${t}`);
        sender = ws;
      } else ws.subscribe(`t${d.topic}`);
      opened++;
    },
    maxBackpressure: 64 * 1024 * 1024,
  });
  const listen = await new Promise<us_listen_socket>((resolve, reject) => app.listen('127.0.0.1', 0, (s) => (s ? resolve(s) : reject(new Error('listen failed')))));
  const { us_socket_local_port } = await import('uWebSockets.js');
  const port = us_socket_local_port(listen);
  const clients: WebSocketClient[] = [];
  const connect = (query: string) => {
    const c = new WebSocketClient(`ws://127.0.0.1:${port}/?${query}`);
    c.on('message', () => undefined);
    clients.push(c);
  };
  connect('s=1');
  for (let t = 0; t < topics; t++) for (let i = 0; i < subsPerTopic; i++) connect(`t=${t}`);
  const deadline = Date.now() + 60_000;
  while (opened < clients.length || sender === null) {
    if (Date.now() > deadline) throw new Error(`only ${opened}/${clients.length} sockets opened`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { app, listen, sender: sender as WebSocket<{ sender: boolean }>, clients };
}

/** CPU µs of `publishes` calls the given way, in batches of 100 with an event-loop turn between (uWS writes then). */
async function timeWay(s: Setup, way: Way, topics: number, publishes: number, frame: string): Promise<number> {
  let cpu = 0;
  for (let k = 0; k < publishes; ) {
    const t0 = process.cpuUsage();
    for (let n = 0; n < 100; n++, k++) {
      const key = `t${k % topics}`;
      if (way === 'ws.publish') s.sender.publish(key, frame, false);
      else if (way === 'app.publish') s.app.publish(key, frame, false);
      else {
        s.sender.unsubscribe(key);
        s.app.publish(key, frame, false);
        s.sender.subscribe(key);
      }
    }
    const d = process.cpuUsage(t0);
    cpu += d.user + d.system;
    await new Promise((r) => setImmediate(r));
  }
  return cpu;
}

async function main(): Promise<void> {
  const [held, topics, subsPerTopic, publishes] = [1000, 100, 10, 20000].map((d, i) => Number(process.argv[2 + i] ?? d));
  const s = await setup(held, topics, subsPerTopic);
  const frame = JSON.stringify({ event: 'client-b', channel: 'private-t0', data: 'x'.repeat(200) });
  const best = new Map<Way, number>();
  // Interleaved rounds, best of each: the machine is shared.
  for (let round = 0; round < 5; round++) {
    for (const way of WAYS) {
      const us = await timeWay(s, way, topics, publishes, frame);
      best.set(way, Math.min(best.get(way) ?? Infinity, us));
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  console.log(`sender holds ${held} topics; ${topics} topics × ${subsPerTopic} subscribers; ${publishes} publishes per round, best of 5`);
  for (const way of WAYS) console.log(`${way.padEnd(36)} ${((best.get(way) as number) * 1000 / publishes).toFixed(0).padStart(6)} ns per publish (CPU, the call only)`);
  for (const c of s.clients) c.terminate();
  us_listen_socket_close(s.listen);
}

void main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
