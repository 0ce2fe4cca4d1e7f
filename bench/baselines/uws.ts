/**
 * Baseline: raw uWebSockets.js, native pub/sub (`app.publish`) and nothing else: the ceiling for
 * this stack. Same contract as wsgate: `?topics=a,b` subscribes, `{"op":"pub",...}` publishes,
 * deliveries are `{"t":topic,"s":seq,"d":data}`.
 *   node dist/bench/baselines/uws.js --port 9001 [--threads N [--numbering none|owner|shared]]
 *
 * `--threads N` (N ≥ 2) is the floor of any gateway on uWS that uses N threads (the cores scenario's
 * reference for --workers): uWS pub/sub does not cross threads, so each thread's app must publish
 * every message its subscribers need. The main thread only accepts (uWS's acceptor hands connections
 * to the threads' apps in turn); a publish is framed once, published on its thread, and its finished
 * frame copied to every other thread through wsgate's shared-memory mesh (src/workers/mesh.ts, the
 * cheapest hand-off measured, bench/micro/worker-ring.ts), where it is published as is. Nothing else:
 * no numbering across threads (each thread counts its own `s`; the generator checks its own stamps),
 * no interest routing (every publish goes to every thread), no history. `--numbering owner` adds what
 * wsgate's design needs for one sequence per topic: a publish goes to its topic's owner thread first,
 * which numbers it and sends the frame to every other thread (the publisher's included);
 * `--numbering shared` numbers it where it arrives, through counters in shared memory (SharedCounters).
 */
import * as uWS from 'uWebSockets.js';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { childApps } from '../../src/workers/acceptor';
import { MeshLink, type MeshMemory, createMesh } from '../../src/workers/mesh';
import { argNumber, argValue, topicsFromQuery } from '../lib/cli';
import { ownerOf } from '../../src/broker/in-process-broker';

interface PubMessage {
  op?: string;
  topic?: string;
  data?: unknown;
}

/** Frames publishes as `{"t","s","d"}`; seqs counted per topic by whoever calls `next`. */
class Framer {
  private readonly seqs = new Map<string, number>();

  next(topic: string): number {
    const s = (this.seqs.get(topic) ?? 0) + 1;
    this.seqs.set(topic, s);
    return s;
  }

  frame(topic: string, s: number, data: unknown): string {
    return JSON.stringify({ t: topic, s, d: data });
  }
}

/** One uWS app with the baseline's contract: subscribes from the query; each publish goes to `publish`. */
function baselineApp(maxBackpressure: number, publish: (topic: string, data: unknown) => void): uWS.TemplatedApp {
  const app = uWS.App();
  app.ws<{ topics: string[] }>('/*', {
    compression: uWS.DISABLED,
    maxPayloadLength: 64 * 1024,
    maxBackpressure,
    idleTimeout: 120,
    upgrade: (res, req, context) => {
      res.upgrade(
        { topics: topicsFromQuery(req.getQuery('topics')) },
        req.getHeader('sec-websocket-key'),
        req.getHeader('sec-websocket-protocol'),
        req.getHeader('sec-websocket-extensions'),
        context,
      );
    },
    open: (ws) => {
      for (const t of ws.getUserData().topics) ws.subscribe(t);
    },
    message: (_ws, message) => {
      const m = JSON.parse(Buffer.from(message).toString('utf8')) as PubMessage;
      if (m.op === 'pub' && typeof m.topic === 'string') publish(m.topic, m.data);
    },
  });
  return app;
}

/** How `--threads` numbers a topic's messages: not at all (each thread counts its own), by the topic's owner thread, or through shared counters. */
type Numbering = 'none' | 'owner' | 'shared';

// Mesh record kinds of --threads: FRAME, a finished delivery for the receiver's subscribers; PUB (owner
// numbering), a client publish for the topic's owner thread to number. Both: id = the topic's byte
// length, bytes = the topic, then the frame or the data as JSON.
const FRAME = 0;
const PUB = 1;

/** Counter slots of shared numbering (topics that share a slot share a sequence: gaps, never repeats). */
const SLOTS = 4096;

/**
 * Shared numbering: per slot a lock and a counter in shared memory. A thread numbers a publish under
 * the lock after draining what the other threads sent it, so every message of the slot numbered before
 * (written to its ring before their unlock) is published here first: each thread publishes in order.
 * Exact with 2 threads; with more, a thread receiving from two others would have to merge their rings
 * by number (the cores scenario runs 2).
 */
class SharedCounters {
  private readonly cells: Int32Array;

  constructor(sab: SharedArrayBuffer) {
    this.cells = new Int32Array(sab);
  }

  static create(): SharedArrayBuffer {
    return new SharedArrayBuffer(SLOTS * 8);
  }

  /** Runs `fn` with the next number of `topic`'s slot, after `before`, under the slot's lock. */
  next(topic: string, before: () => void, fn: (s: number) => void): void {
    const lock = 2 * ownerOf(topic, SLOTS);
    for (let spins = 0; Atomics.compareExchange(this.cells, lock, 0, 1) !== 0; spins++) {
      // The holder may be descheduled on this core: sleep a little rather than spin its slice away.
      if (spins > 64) Atomics.wait(this.cells, lock, 1, 0.02);
    }
    try {
      before();
      fn(Atomics.add(this.cells, lock + 1, 1) + 1);
    } finally {
      Atomics.store(this.cells, lock, 0);
    }
  }
}

interface ThreadSetup {
  readonly index: number;
  readonly mesh: MeshMemory;
  readonly counters: SharedArrayBuffer;
  readonly maxBackpressure: number;
  readonly numbering: Numbering;
}

/**
 * A thread of `--threads N`: its app, fed by the acceptor. A publish is framed once and published here,
 * and the frame crosses to every other thread. Owner numbering first sends a publish to the thread that
 * owns its topic (the hash wsgate's workers use), which numbers it and sends the frame to every other
 * thread, the publisher's included: the floor of wsgate's owner-numbered design. Shared numbering takes
 * the number where the publish arrives (SharedCounters): no round trip.
 */
function runThread(t: ThreadSetup): void {
  const link = new MeshLink(t.index, t.mesh);
  const counters = new SharedCounters(t.counters);
  const framer = new Framer();
  let out = Buffer.allocUnsafe(64 * 1024);
  const send = (kind: number, to: number, topic: string, body: string): void => {
    const need = Buffer.byteLength(topic) + Buffer.byteLength(body);
    if (need > out.length) out = Buffer.allocUnsafe(need);
    const n = out.write(topic, 0);
    const len = n + out.write(body, n);
    for (let w = 0; w < link.count; w++) if (w !== t.index && (to < 0 || w === to)) link.write(w, kind, n, out, len);
  };
  const deliver = (topic: string, s: number, data: unknown): void => {
    const frame = framer.frame(topic, s, data);
    app.publish(topic, frame, false);
    send(FRAME, -1, topic, frame);
  };
  const drain = (): void => link.drain();
  const app = baselineApp(t.maxBackpressure, (topic, data) => {
    if (t.numbering === 'shared') return counters.next(topic, drain, (s) => deliver(topic, s, data));
    const owner = t.numbering === 'owner' ? ownerOf(topic, link.count) : t.index;
    if (owner === t.index) deliver(topic, framer.next(topic), data);
    else send(PUB, owner, topic, JSON.stringify(data));
  });
  link.start((_from, kind, topicLen, bytes, start, len) => {
    const body = start + topicLen;
    if (kind === FRAME) return void app.publish(bytes.subarray(start, body), bytes.subarray(body, start + len), false);
    const topic = bytes.toString('utf8', start, body);
    deliver(topic, framer.next(topic), JSON.parse(bytes.toString('utf8', body, start + len)));
  });
  parentPort?.postMessage(childApps(app).getDescriptor());
  // An app without a listen socket of its own does not keep the thread's loop alive: this does.
  setInterval(() => {}, 1 << 30);
}

/** The main thread of `--threads N`: starts the threads, then listens once every app is a child of its acceptor. */
function runAcceptor(host: string, port: number, threads: number, maxBackpressure: number, numbering: Numbering): void {
  const mesh = createMesh(threads);
  const counters = SharedCounters.create();
  const acceptor = uWS.App();
  let added = 0;
  for (let index = 0; index < threads; index++) {
    const setup: ThreadSetup = { index, mesh, counters, maxBackpressure, numbering };
    const w = new Worker(__filename, { workerData: setup });
    w.once('message', (descriptor: number) => {
      childApps(acceptor).addChildAppDescriptor(descriptor);
      if (++added === threads) listen(acceptor, host, port);
    });
    w.on('error', (err) => {
      console.error(`uws baseline: thread ${index}:`, err);
      process.exit(1);
    });
  }
  process.on('SIGTERM', () => process.exit(0));
}

function listen(app: uWS.TemplatedApp, host: string, port: number): void {
  app.listen(host, port, (listenSocket) => {
    if (!listenSocket) {
      console.error(`uws baseline: cannot listen on ${host}:${port}`);
      process.exit(1);
    }
  });
}

if (!isMainThread) {
  runThread(workerData as ThreadSetup);
} else {
  const host = argValue(process.argv, 'host') ?? '127.0.0.1';
  const port = argNumber(process.argv, 'port', 9001);
  const threads = argNumber(process.argv, 'threads', 1);
  const maxBackpressure = argNumber(process.argv, 'max-backpressure', 1024 * 1024);
  const numbering = argValue(process.argv, 'numbering') ?? 'none';
  if (numbering !== 'none' && numbering !== 'owner' && numbering !== 'shared') throw new Error(`--numbering expects none, owner or shared, got ${numbering}`);
  if (threads >= 2) runAcceptor(host, port, threads, maxBackpressure, numbering);
  else {
    const framer = new Framer();
    const app = baselineApp(maxBackpressure, (topic, data) => app.publish(topic, framer.frame(topic, framer.next(topic), data), false));
    listen(app, host, port);
    process.on('SIGTERM', () => {
      app.close();
      process.exit(0);
    });
  }
}
