/**
 * The load generator process. The orchestrator starts it pinned to its own core and drives it over
 * the IPC channel (gen/control.ts); it spreads connections over worker threads (gen/worker.ts).
 */
import { Worker } from 'node:worker_threads';
import * as path from 'node:path';
import { ConnectResult, GenCmd, GenConnect, GenReply, GenRun, RunResult } from './control';
import { ConnectDone, PublishDone, SharedState, WorkerCmd, WorkerMsg, WorkerReport } from './messages';
import { mergeHistograms, summarize } from '../lib/histogram';
import { WorkerInit } from './worker';

class Thread {
  private readonly waiting: ((m: WorkerMsg) => void)[] = [];
  readonly worker: Worker;

  constructor(init: WorkerInit) {
    this.worker = new Worker(path.join(__dirname, 'worker.js'), { workerData: init });
    this.worker.on('message', (m: WorkerMsg) => this.waiting.shift()?.(m));
    this.worker.on('error', (err: Error) => fail(`worker ${init.slot}: ${err.stack ?? err.message}`));
  }

  /** Sends a command and resolves with the worker's next message. */
  ask<T extends WorkerMsg>(cmd: WorkerCmd): Promise<T> {
    return new Promise((resolve) => {
      this.waiting.push((m) => resolve(m as T));
      this.worker.postMessage(cmd);
    });
  }

  tell(cmd: WorkerCmd): void {
    this.worker.postMessage(cmd);
  }
}

let threads: Thread[] = [];
let received = new Float64Array(new SharedArrayBuffer(0));
let subscriberThreads: Thread[] = [];
let publisherThread: Thread | null = null;

function reply(m: GenReply): void {
  process.send?.(m);
}

function fail(message: string): void {
  reply({ type: 'error', message });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function sumReceived(): number {
  let s = 0;
  for (let i = 0; i < received.length - 1; i++) s += received[i];
  return s;
}

/** Splits `n` into `parts` near-equal counts. */
function split(n: number, parts: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < parts; i++) out.push(Math.floor(n / parts) + (i < n % parts ? 1 : 0));
  return out;
}

async function connect(cmd: GenConnect): Promise<ConnectResult> {
  const t0 = performance.now();
  const jobs: Promise<ConnectDone>[] = [];
  const counts = split(cmd.subs, subscriberThreads.length);
  let first = 0;
  subscriberThreads.forEach((t, i) => {
    jobs.push(
      t.ask<ConnectDone>({
        cmd: 'connect',
        role: 'sub',
        first,
        count: counts[i],
        numTopics: cmd.numTopics,
        numPublishers: cmd.publisherIds,
        concurrency: Math.max(1, Math.ceil(cmd.concurrency / subscriberThreads.length)),
        timeoutMs: cmd.timeoutMs,
        ports: cmd.subPorts,
        topicsPerConn: cmd.topicsPerConn,
      }),
    );
    first += counts[i];
  });
  const subsDone = await Promise.all(jobs);
  const subSeconds = (performance.now() - t0) / 1000;
  const pubDone =
    cmd.publishers > 0 && publisherThread !== null
      ? await publisherThread.ask<ConnectDone>({
          cmd: 'connect',
          role: 'pub',
          first: 0,
          count: cmd.publishers,
          numTopics: cmd.numTopics,
          numPublishers: cmd.publisherIds,
          concurrency: cmd.publishers,
          timeoutMs: cmd.timeoutMs,
        })
      : { type: 'connected', ok: 0, failed: 0, errors: [] };
  const all = [...subsDone, pubDone];
  const ok = subsDone.reduce((s, d) => s + d.ok, 0);
  return {
    ok: ok + pubDone.ok,
    failed: all.reduce((s, d) => s + d.failed, 0),
    seconds: subSeconds,
    perSecond: subSeconds > 0 ? Math.round(ok / subSeconds) : 0,
    errors: all.flatMap((d) => d.errors).slice(0, 5),
  };
}

async function run(cmd: GenRun): Promise<RunResult> {
  if (publisherThread === null) throw new Error('not initialised');
  const base = sumReceived();
  const done = publisherThread.ask<PublishDone>({
    cmd: 'publish',
    mode: cmd.mode,
    rate: cmd.rate,
    durationMs: cmd.warmupMs + cmd.durationMs,
    payloadBytes: cmd.payloadBytes,
    numTopics: cmd.numTopics,
    fanout: cmd.fanout,
    windowPerSub: cmd.windowPerSub,
    totalSubs: cmd.totalSubs,
    httpConnections: cmd.httpConnections,
  });
  await sleep(cmd.warmupMs);
  for (const t of threads) t.tell({ cmd: 'mark' });
  const r0 = sumReceived();
  const t0 = performance.now();
  const pub = await done;
  const seconds = (performance.now() - t0) / 1000;
  const r1 = sumReceived();
  // Wait for stragglers: `drainMs` without progress, 30 s at most, so a slow server's backlog is
  // counted as late, not lost.
  const drainStart = performance.now();
  let lastProgress = drainStart;
  let seen = sumReceived();
  while (sumReceived() - base < pub.expected && performance.now() - lastProgress < cmd.drainMs && performance.now() - drainStart < 30000) {
    await sleep(20);
    if (sumReceived() !== seen) {
      seen = sumReceived();
      lastProgress = performance.now();
    }
  }
  const reports = await Promise.all(threads.map((t) => t.ask<WorkerReport>({ cmd: 'report' })));
  const got = sumReceived() - base;
  const http = reports.map((r) => r.httpLatency).filter((h) => h !== '');
  const deliveriesPerSec = Math.round((r1 - r0) / seconds);
  return {
    mode: cmd.mode,
    offeredRate: cmd.rate,
    seconds: Math.round(seconds * 100) / 100,
    published: pub.published,
    publishesPerSec: Math.round(deliveriesPerSec / cmd.fanout),
    deliveriesPerSec,
    expected: pub.expected,
    received: got,
    lost: Math.max(0, pub.expected - got),
    gaps: reports.reduce((s, r) => s + r.gaps, 0),
    reordered: reports.reduce((s, r) => s + r.reordered, 0),
    unexpected: reports.reduce((s, r) => s + r.unexpected, 0),
    disconnects: reports.reduce((s, r) => s + r.disconnects, 0),
    latencyMs: summarize(mergeHistograms(reports.map((r) => r.latency))),
    httpLatencyMs: http.length > 0 ? summarize(mergeHistograms(http)) : null,
    httpOk: pub.httpOk,
    httpFailed: pub.httpFailed,
    errors: reports.flatMap((r) => r.errors).slice(0, 5),
  };
}

async function handle(cmd: GenCmd): Promise<void> {
  switch (cmd.cmd) {
    case 'init': {
      const n = Math.max(1, cmd.threads);
      const shared: SharedState = {
        received: new SharedArrayBuffer(8 * (n + 1)),
        control: new SharedArrayBuffer(8),
      };
      received = new Float64Array(shared.received);
      threads = [];
      for (let slot = 0; slot < n; slot++) threads.push(new Thread({ slot, target: cmd.target, shared }));
      publisherThread = threads[0];
      subscriberThreads = n === 1 ? threads : threads.slice(1);
      reply({ type: 'ready' });
      return;
    }
    case 'connect':
      reply({ type: 'connected', result: await connect(cmd) });
      return;
    case 'run':
      reply({ type: 'ran', result: await run(cmd) });
      return;
    case 'close':
      await Promise.all(threads.map((t) => t.ask({ cmd: 'close' })));
      await Promise.all(threads.map((t) => t.worker.terminate()));
      process.exit(0);
  }
}

process.on('message', (cmd: GenCmd) => {
  handle(cmd).catch((err: Error) => fail(err.stack ?? err.message));
});
process.on('disconnect', () => process.exit(0));
