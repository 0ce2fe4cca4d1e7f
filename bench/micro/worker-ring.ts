/**
 * Cross-thread cost of one message, shared-memory ring (what --workers uses) against postMessage:
 * `node dist/bench/micro/worker-ring.js [messages] [bytes] [modes] [burst]`. The main thread writes
 * `messages` records of `bytes` in bursts of `burst` (default 64) per event-loop turn to one worker
 * thread, which reads each (copying it out, as InProcessBroker does) and sums a byte so nothing is
 * optimised away. Reports, per message: process CPU (both threads, ns), wall time (ns), and JS heap
 * bytes allocated in the sending thread. A burst of 1 wakes the reader for every message: the cost of
 * a publish that arrives alone.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { Doorbell, RingReader, RingWriter, createRing } from '../../src/workers/ring';


interface Setup {
  mode: 'ring' | 'postMessage' | 'transfer';
  ring: SharedArrayBuffer;
  bell: SharedArrayBuffer;
  messages: number;
}

function consumer(setup: Setup): void {
  const port = parentPort as NonNullable<typeof parentPort>;
  let seen = 0;
  let sum = 0;
  const scratch = Buffer.allocUnsafe(1 << 16);
  const done = (): void => port.postMessage({ done: true, sum });
  if (setup.mode !== 'ring') {
    port.on('message', (m: Uint8Array | ArrayBuffer) => {
      const u = m instanceof ArrayBuffer ? new Uint8Array(m) : m;
      sum += u[0] as number;
      if (++seen === setup.messages) done();
    });
    return;
  }
  const reader = new RingReader(setup.ring);
  const bell = new Doorbell(setup.bell);
  const visit = (_k: number, _id: number, bytes: Buffer, start: number, len: number): void => {
    bytes.copy(scratch, 0, start, start + len);
    sum += scratch[0] as number;
    seen++;
  };
  // A pending Atomics.waitAsync does not keep a thread's event loop alive (a gateway worker has its
  // uWS app for that); here a timer does.
  const alive = setInterval(() => {}, 1000);
  const loop = async (): Promise<void> => {
    while (seen < setup.messages) {
      const v = bell.value;
      reader.drain(visit);
      if (seen >= setup.messages) break;
      const w = bell.wait(v);
      if (w === null) continue;
      await w;
      bell.awake();
    }
    clearInterval(alive);
    done();
  };
  void loop();
}

async function run(mode: Setup['mode'], messages: number, bytes: number, burst: number): Promise<Record<string, number | string>> {
  const setup: Setup = { mode, ring: createRing(4 * 1024 * 1024), bell: Doorbell.create(), messages };
  const worker = new Worker(__filename, { workerData: setup });
  const finished = new Promise<void>((resolve) => worker.on('message', () => resolve()));
  await new Promise((r) => worker.once('online', r));
  const writer = new RingWriter(setup.ring);
  const bell = new Doorbell(setup.bell);
  const payload = Buffer.alloc(bytes, 7);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const heap0 = process.memoryUsage().heapUsed;
  let sent = 0;
  let full = 0;
  await new Promise<void>((resolve) => {
    const turn = (): void => {
      for (let i = 0; i < burst && sent < messages; i++) {
        if (mode === 'ring') {
          if (!writer.write(1, sent, payload, bytes)) {
            full++;
            break;
          }
        } else if (mode === 'postMessage') worker.postMessage(payload);
        else {
          const copy = new ArrayBuffer(bytes);
          new Uint8Array(copy).set(payload);
          worker.postMessage(copy, [copy]);
        }
        sent++;
      }
      if (mode === 'ring') bell.ring();
      if (sent < messages) setImmediate(turn);
      else resolve();
    };
    turn();
  });
  const heap1 = process.memoryUsage().heapUsed;
  await finished;
  const wall = Number(process.hrtime.bigint() - t0);
  const cpu = process.cpuUsage(cpu0);
  await worker.terminate();
  return {
    mode,
    bytes,
    burst,
    cpuNsPerMsg: Math.round(((cpu.user + cpu.system) * 1000) / messages),
    wallNsPerMsg: Math.round(wall / messages),
    // A lower bound (a GC during the run frees some): enough to tell zero from per-message garbage.
    senderHeapBytesPerMsg: Math.max(0, Math.round((heap1 - heap0) / messages)),
    ringFullStalls: full,
  };
}

async function main(): Promise<void> {
  const messages = Number(process.argv[2] ?? 200_000);
  const bytes = Number(process.argv[3] ?? 128);
  const burst = Number(process.argv[5] ?? 64);
  const rows = [];
  for (const mode of (process.argv[4]?.split(',') ?? ['ring', 'postMessage', 'transfer', 'ring']) as Setup['mode'][]) rows.push(await run(mode, messages, bytes, burst));
  console.table(rows);
}

if (isMainThread) void main();
else consumer(workerData as Setup);
