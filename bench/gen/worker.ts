/**
 * One generator thread. It holds subscriber connections (recording latency, loss and reordering from
 * the payload stamps) and/or publisher connections (sending at max rate under a window, at a fixed
 * open-loop rate, or through HTTP POST /publish). The receive path allocates nothing per message.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ClientEvents, ClientTarget, WsClient } from './client';
import { HttpPoster } from './http';
import { ConnectCmd, PublishCmd, SharedState, TargetSpec, WorkerCmd, WorkerMsg, WorkerReport } from './messages';
import { OP_TEXT, maskPayload, writeClientHeader } from '../lib/frame';
import { dialect } from '../lib/dialect';
import { LatencyRecorder } from '../lib/histogram';
import { nowUs, writePayload } from '../lib/stamp';
import { DeliveryRecorder } from './recorder';
import { localAddressFor, topicName } from '../lib/naming';

export interface WorkerInit {
  slot: number;
  target: TargetSpec;
  shared: SharedState;
}

const init = workerData as WorkerInit;
const port = parentPort;
if (port === null) throw new Error('worker.ts must run as a worker thread');
const received = new Float64Array(init.shared.received);
const WAKE_AT = received.length - 1;
const control = new Int32Array(init.shared.control);
const target: ClientTarget = { host: init.target.host, port: init.target.port, dialect: dialect(init.target.dialect) };
const readBuffer = Buffer.allocUnsafe(256 * 1024);

function post(msg: WorkerMsg): void {
  port?.postMessage(msg);
}

// ---- subscriber side ----------------------------------------------------------------------------
const rec = new DeliveryRecorder();
const httpLatency = new LatencyRecorder();
let disconnects = 0;

// ---- connections --------------------------------------------------------------------------------
const subs: WsClient[] = [];
const pubs: Publisher[] = [];
let pending: ((c: WsClient, ok: boolean, error: string) => void) | null = null;

const events: ClientEvents = {
  onChunk(): void {
    rec.startRead();
  },
  onChunkDone(): void {
    received[init.slot] = rec.total;
    // Wake a waiting publisher once, when its window has drained to the level it asked for.
    if (Atomics.load(control, 1) === 1 && sumReceived() >= received[WAKE_AT] && Atomics.compareExchange(control, 1, 1, 0) === 1) {
      Atomics.add(control, 0, 1);
      Atomics.notify(control, 0);
    }
  },
  onReady(c: WsClient): void {
    pending?.(c, true, '');
  },
  onData(c: WsClient, data: Buffer, start: number, end: number): void {
    rec.onData(c.lastSeq, data, start, end);
  },
  onEnd(c: WsClient, error: string): void {
    if (!c.ready) pending?.(c, false, error);
    else if (error !== '') {
      disconnects++;
      rec.noteError(`disconnect: ${error}`);
    }
  },
};

function connect(cmd: ConnectCmd): void {
  const started: WsClient[] = [];
  let next = 0;
  let inflight = 0;
  let ok = 0;
  let failed = 0;
  const errs: string[] = [];
  let done = false;
  const finish = (): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    pending = null;
    for (const c of started) if (!c.ready) c.close();
    post({ type: 'connected', ok, failed: cmd.count - ok, errors: errs });
  };
  const timer = setTimeout(finish, cmd.timeoutMs);
  const targets = cmd.ports !== undefined && cmd.ports.length > 0 ? cmd.ports.map((p) => ({ ...target, port: p })) : [target];
  const pump = (): void => {
    while (inflight < cmd.concurrency && next < cmd.count) {
      const i = cmd.first + next++;
      inflight++;
      // Pusher publishers send client events, which need a subscription to the channel: publisher j holds
      // the channels t ≡ j (mod publishers), the only ones it publishes to (see publisherFor), so no
      // publisher receives another's events and every publish reaches its topic's subscribers only, as
      // with the other servers. (Holding all channels made each Pusher publisher a subscriber of the
      // others' events: ~19 sends per publish against 10 counted, 0.31× wsgate's protocol.)
      const topics =
        cmd.role === 'sub'
          ? Array.from({ length: cmd.topicsPerConn ?? 1 }, (_, k) => topicName((i + k) % cmd.numTopics))
          : target.dialect.name === 'pusher'
            ? Array.from({ length: cmd.numTopics }, (_, t) => t).filter((t) => cmd.numTopics === 1 || t % cmd.count === i - cmd.first).map(topicName)
            : [];
      started.push(new WsClient(i, targets[i % targets.length], topics, localAddressFor(i), readBuffer, events));
    }
    if (ok + failed === cmd.count) finish();
  };
  pending = (c, success, error) => {
    inflight--;
    if (success) {
      ok++;
      if (cmd.role === 'sub') {
        c.lastSeq = new Float64Array(cmd.numPublishers);
        subs.push(c);
      } else {
        pubs.push(new Publisher(c, c.index));
        // In connection order, so that publisherFor(t) is the connection holding topic t (Pusher).
        pubs.sort((a, b) => a.pid - b.pid);
      }
    } else {
      failed++;
      if (errs.length < 5) errs.push(error);
    }
    pump();
  };
  pump();
}

// ---- publisher side -------------------------------------------------------------------------------
const SCRATCH = 64 * 1024;

/** A publisher connection with its own frame scratch space and per-topic sequence numbers. */
class Publisher {
  private readonly scratch = Buffer.allocUnsafe(SCRATCH);
  private off = 0;
  private seqs = new Float64Array(0);

  constructor(
    private readonly client: WsClient,
    readonly pid: number,
  ) {}

  prepare(numTopics: number): void {
    if (this.seqs.length < numTopics) this.seqs = new Float64Array(numTopics);
  }

  /** Appends one masked publish frame stamped with `tsUs`. */
  add(topic: number, payloadBytes: number, tsUs: number): void {
    const prefix = prefixes[topic];
    const len = prefix.length + payloadBytes + suffix.length;
    if (this.off + len + 14 > SCRATCH) this.flush();
    const body = writeClientHeader(this.scratch, this.off, OP_TEXT, len, this.client.mask);
    prefix.copy(this.scratch, body);
    writePayload(this.scratch, body + prefix.length, payloadBytes, this.pid, ++this.seqs[topic], tsUs);
    suffix.copy(this.scratch, body + prefix.length + payloadBytes);
    maskPayload(this.scratch, body, body + len, this.client.mask);
    this.off = body + len;
  }

  close(): void {
    this.client.close();
  }

  /** Writes the frames gathered so far in one socket write. */
  flush(): void {
    if (this.off === 0) return;
    this.client.send(Buffer.from(this.scratch.subarray(0, this.off)));
    this.off = 0;
  }
}

let prefixes: Buffer[] = [];
const suffix = target.dialect.pubSuffix;

function sumReceived(): number {
  let s = 0;
  for (let i = 0; i < WAKE_AT; i++) s += received[i];
  return s;
}

/** The publisher that sends to `topic`: each topic has one (with one topic, publishers take turns). */
let turn = 0;
function publisherFor(topic: number): Publisher {
  return pubs[topicCount === 1 ? turn++ % pubs.length : topic % pubs.length];
}
let topicCount = 1;

/** Topic for the k-th publish: one topic, or a fixed pseudo-random order (no RNG on the hot path). */
function topicPicker(numTopics: number): (k: number) => number {
  if (numTopics === 1) return () => 0;
  const order = new Uint32Array(65536);
  for (let i = 0; i < order.length; i++) order[i] = Math.floor(Math.random() * numTopics);
  return (k) => order[k & 0xffff];
}

type WaitAsync = (a: Int32Array, i: number, v: number, t: number) => { async: boolean; value: Promise<string> | string };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/**
 * Parks the publisher until the subscriber threads have received `target` deliveries in total (or
 * 20 ms pass). Waking once per half window, not per read, keeps cross-thread signalling cheap and
 * lets the publisher send in batches.
 */
async function waitForDeliveries(target: number): Promise<void> {
  received[WAKE_AT] = target;
  const seen = Atomics.load(control, 0);
  Atomics.store(control, 1, 1);
  if (sumReceived() < target) {
    const r = waitAsync(control, 0, seen, 20);
    if (r.async) await r.value;
  }
  Atomics.store(control, 1, 0);
}

const immediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Closed loop: keep at most `windowPerSub` deliveries per subscriber in flight, as fast as possible. */
async function publishMax(cmd: PublishCmd): Promise<number> {
  const pick = topicPicker(cmd.numTopics);
  const window = cmd.windowPerSub * cmd.totalSubs;
  const base = sumReceived();
  const deadline = Date.now() + cmd.durationMs;
  let k = 0;
  while (Date.now() < deadline) {
    const free = window - (k * cmd.fanout - (sumReceived() - base));
    const allowed = Math.min(Math.floor(free / cmd.fanout), 512);
    if (allowed <= 0 || free < window / 2) {
      await waitForDeliveries(base + k * cmd.fanout - window / 2);
      continue;
    }
    const ts = nowUs();
    for (let n = 0; n < allowed; n++, k++) {
      const t = pick(k);
      publisherFor(t).add(t, cmd.payloadBytes, ts);
    }
    for (const p of pubs) p.flush();
    await immediate();
  }
  return k;
}

/** Open loop: the k-th publish is due at t0 + k/rate and carries that time, however late it is sent. */
async function publishRate(cmd: PublishCmd): Promise<number> {
  const pick = topicPicker(cmd.numTopics);
  const total = Math.max(1, Math.floor((cmd.durationMs / 1000) * cmd.rate));
  const interval = 1e6 / cmd.rate;
  const t0 = nowUs();
  let k = 0;
  while (k < total) {
    const due = Math.min(total, Math.floor((nowUs() - t0) / interval) + 1);
    for (; k < due; k++) {
      const t = pick(k);
      publisherFor(t).add(t, cmd.payloadBytes, Math.round(t0 + k * interval));
    }
    for (const p of pubs) p.flush();
    if (k < total) await sleep(1);
  }
  return k;
}

/** Closed loop over `httpConnections` keep-alive connections for the duration. */
async function publishHttp(cmd: PublishCmd): Promise<{ published: number; ok: number; failed: number }> {
  let ok = 0;
  let failed = 0;
  const posters: HttpPoster[] = [];
  const path = init.target.publishPath ?? '/publish';
  for (let i = 0; i < cmd.httpConnections; i++) {
    posters.push(
      new HttpPoster(target.host, target.port, path, localAddressFor(i), i, topicName(0), cmd.payloadBytes, {
        onResponse(status: number, sentUs: number): void {
          if (status === 200) ok++;
          else failed++;
          httpLatency.record(nowUs() - sentUs);
        },
        onError(reason: string): void {
          failed++;
          rec.noteError(`http: ${reason}`);
        },
      }),
    );
  }
  for (const p of posters) p.start();
  await sleep(cmd.durationMs);
  for (const p of posters) p.stop();
  await sleep(200); // let the last in-flight responses arrive
  for (const p of posters) p.close();
  return { published: ok, ok, failed };
}

async function publish(cmd: PublishCmd): Promise<void> {
  prefixes = [];
  for (let t = 0; t < cmd.numTopics; t++) prefixes.push(target.dialect.pubPrefix(topicName(t)));
  for (const p of pubs) p.prepare(cmd.numTopics);
  topicCount = cmd.numTopics;
  if (cmd.mode === 'http') {
    const r = await publishHttp(cmd);
    post({ type: 'published', published: r.published, expected: r.ok * cmd.fanout, httpOk: r.ok, httpFailed: r.failed });
    return;
  }
  if (cmd.mode === 'listen') await sleep(cmd.durationMs);
  const n = cmd.mode === 'max' ? await publishMax(cmd) : cmd.mode === 'rate' ? await publishRate(cmd) : 0;
  post({ type: 'published', published: n, expected: n * cmd.fanout, httpOk: 0, httpFailed: 0 });
}

function report(): WorkerReport {
  return {
    type: 'report',
    latency: rec.latency.encode(),
    httpLatency: httpLatency.count > 0 ? httpLatency.encode() : '',
    received: rec.total,
    gaps: rec.gaps,
    reordered: rec.reordered,
    unexpected: rec.unexpected,
    disconnects,
    errors: rec.errors.slice(),
  };
}

port.on('message', (cmd: WorkerCmd) => {
  switch (cmd.cmd) {
    case 'connect':
      connect(cmd);
      break;
    case 'publish':
      void publish(cmd);
      break;
    case 'mark':
      rec.latency.reset();
      httpLatency.reset();
      break;
    case 'report':
      post(report());
      break;
    case 'close':
      for (const c of subs) c.close();
      for (const p of pubs) p.close();
      post({ type: 'closed' });
      break;
  }
});
