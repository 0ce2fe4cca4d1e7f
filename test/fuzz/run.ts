import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { SignJWT } from 'jose';
import { Packr } from 'msgpackr';
import { type Delivery, GatewayClient } from '../../src/client/gateway-client';
import { type ChildGateway, metric, spawnGateway } from '../helpers/gateway';
import { FrameReader, Op, RawWs, rawRequest } from '../helpers/ws-raw';
import { type Codec, FUZZ_TOPICS, type FuzzInput, inputArbitrary } from './inputs';

/**
 * Drives a live gateway (a child process) with generated inputs from several concurrent lanes, while
 * bystander subscribers receive a numbered stream on a topic no input can reach. Afterwards it checks
 * the invariants: the process lived, each bystander got every message exactly once and in order, the
 * gateway's prototypes are untouched (its own `wsgate_prototype_changes` gauge) and RSS stayed bounded.
 */

export interface FuzzOptions {
  readonly inputs: number;
  readonly seed: number;
  /** Concurrent lanes, each with its own long-lived JSON and msgpack connections. */
  readonly lanes: number;
  /** Progress lines (every ~5 s); null for none. */
  readonly progress: ((line: string) => void) | null;
  /** More serve flags (e.g. --workers 2). */
  readonly extraFlags?: readonly string[];
}

export interface FuzzReport {
  readonly seed: number;
  readonly inputs: number;
  readonly byKind: Record<FuzzInput['kind'], number>;
  readonly durationMs: number;
  readonly inputsPerSecond: number;
  /** Child RSS after warm-up and after the run (lanes closed, 2 s settle), bytes. */
  readonly rssBefore: number;
  readonly rssAfter: number;
  readonly rssPeak: number;
  /** Lane connections the server closed (expected: protocol errors, 1009s) and barriers that timed out. */
  readonly serverCloses: number;
  readonly stalls: number;
  /** Raw frame inputs of whole frames after which neither the ping answer nor a close came in time. */
  readonly unanswered: number;
  readonly upgradesAccepted: number;
  readonly httpStatuses: Record<string, number>;
  readonly bystanderPublished: number;
  readonly failures: string[];
  readonly lastInputs: string[];
}

const API_KEY = 'fuzz-key';
const SECRET = 'fuzz-secret-0123456789abcdef0123456789';
const BYSTANDER = 'bystander-7c1e';
/** RSS after the run may exceed RSS before by at most this (see the report in docs/protocol.md). */
export const RSS_GROWTH_BOUND = 64 * 1024 * 1024;
const BATCH = 500;
const BARRIER_EVERY = 32;
const TIMEOUT_MS = 3000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? NaN : Number(m[1]) * 1024;
}

async function makeTokens(): Promise<string[]> {
  const key = new TextEncoder().encode(SECRET);
  const now = Math.floor(Date.now() / 1000);
  const sign = (claims: Record<string, unknown>, exp: number, alg = 'HS256', k = key) => new SignJWT(claims).setProtectedHeader({ alg }).setExpirationTime(exp).sign(k);
  const valid = await sign({}, now + 3600);
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return [
    valid,
    await sign({ subscribe: ['f*', 'news'], publish: ['f1'] }, now + 3600),
    await sign({ subscribe: 'not-an-array' }, now + 3600),
    await sign({ subscribe: [1, {}] }, now + 3600),
    await sign({}, now - 10), // expired
    await sign({}, now + 3, 'HS256'), // expires during the run: a live connection is closed with 1008
    await sign({}, now + 3600, 'HS256', new TextEncoder().encode('wrong-secret-0123456789abcdef0123')),
    `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'x' })}.`,
    `${b64({ alg: 'HS256' })}.${b64({ __proto__: { admin: true }, constructor: { prototype: { polluted: 1 } } })}.sig`,
    valid.slice(0, -2),
    valid + 'x',
    'a.b.c',
    '...',
    'x'.repeat(3000),
  ];
}

/** One long-lived connection of a lane: fuzzed commands go here, with a ping barrier every few. */
class LaneSocket {
  private ws: RawWs | null = null;
  private sinceBarrier = 0;
  private barrierId = 0;
  private barrierBytes: Buffer = Buffer.alloc(0);
  private barrierSeen = false;

  constructor(
    private readonly port: number,
    readonly codec: Codec,
    private readonly token: string,
    private readonly lane: number,
    private readonly counters: { serverCloses: number; stalls: number },
    /** Whether this connection subscribes to the fuzz topics (a few do: each delivery costs the client). */
    private readonly subscribed: boolean,
  ) {}

  private async open(): Promise<RawWs> {
    for (let attempt = 0; ; attempt++) {
      try {
        const ws = await RawWs.connect(this.port, {
          path: this.subscribed ? `/ws?topics=${FUZZ_TOPICS.join(',')}` : '/ws',
          protocol: `wsgate.${this.codec}`,
          headers: { authorization: `Bearer ${this.token}` },
        });
        ws.sink = (f) => {
          if (f.opcode === Op.Close) return;
          if (this.barrierBytes.length > 0 && f.payload.equals(this.barrierBytes)) this.barrierSeen = true;
        };
        return ws;
      } catch (e) {
        if (attempt >= 20) throw e;
        await sleep(50);
      }
    }
  }

  async send(frame: Uint8Array): Promise<void> {
    const ws = (this.ws ??= await this.open());
    ws.send({ opcode: this.codec === 'json' ? Op.Text : Op.Binary, payload: frame });
    if (++this.sinceBarrier >= BARRIER_EVERY) await this.barrier();
  }

  /** Waits until the server has answered everything sent so far, or notices it closed the connection. */
  async barrier(): Promise<void> {
    const ws = this.ws;
    if (ws === null) return;
    this.sinceBarrier = 0;
    this.barrierId = this.lane * 1e9 + ++this.barrierId % 1e9;
    const reply = { op: 'ok', id: this.barrierId };
    this.barrierBytes = this.codec === 'json' ? Buffer.from(JSON.stringify(reply)) : Buffer.from(packr.pack(reply));
    this.barrierSeen = false;
    const ping = { op: 'ping', id: this.barrierId };
    ws.send({ opcode: this.codec === 'json' ? Op.Text : Op.Binary, payload: this.codec === 'json' ? Buffer.from(JSON.stringify(ping)) : packr.pack(ping) });
    try {
      await ws.until(() => (this.barrierSeen || ws.tcpClosed ? true : undefined), TIMEOUT_MS, 'barrier');
      if (ws.tcpClosed) {
        this.counters.serverCloses++;
        this.ws = null;
      }
    } catch {
      this.counters.stalls++;
      ws.destroy();
      this.ws = null;
    }
  }

  close(): void {
    this.ws?.destroy();
    this.ws = null;
  }
}

const packr = new Packr({ useRecords: false });

/** Whether `bytes` are whole client frames (so the server will read them all and can then answer). */
function wholeFrames(bytes: Buffer): boolean {
  const r = new FrameReader();
  r.push(bytes);
  return r.pending === 0;
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const maxPayload = 16 * 1024;
  const maxDepth = 64;
  const gw: ChildGateway = await spawnGateway([
    '--client-publish',
    '--api-key',
    API_KEY,
    '--jwt-secret',
    SECRET,
    '--max-payload',
    String(maxPayload),
    '--max-depth',
    String(maxDepth),
    '--max-body',
    String(64 * 1024),
    // The command-rate limiter answers before a frame is decoded: off, so every fuzzed command reaches the decoder.
    '--max-commands-per-second',
    '0',
    ...(options.extraFlags ?? []),
  ], {}, options.extraFlags === undefined ? undefined : 40_000);
  const http = `http://127.0.0.1:${gw.port}`;
  const url = `ws://127.0.0.1:${gw.port}/ws`;
  const failures: string[] = [];
  const lastInputs: string[] = [];
  const tokens = await makeTokens();
  const valid = tokens[0] as string;
  const arb = inputArbitrary({ maxPayload, maxDepth, apiKey: API_KEY, tokens, reservedTopic: BYSTANDER });
  const counters = { serverCloses: 0, stalls: 0, unanswered: 0 };
  const byKind: Record<FuzzInput['kind'], number> = { command: 0, frames: 0, http: 0, upgrade: 0 };
  const httpStatuses: Record<string, number> = {};
  let upgradesAccepted = 0;

  // Bystanders: one per codec, and a publisher numbering its messages, all on a topic no input names.
  const bystanders: { codec: Codec; got: Delivery[] }[] = [];
  const clients: GatewayClient[] = [];
  for (const codec of ['json', 'msgpack'] as const) {
    const c = await GatewayClient.connect(url, { codec, token: valid });
    const got: Delivery[] = [];
    c.onDelivery = (d) => got.push(d);
    await c.sub(BYSTANDER);
    clients.push(c);
    bystanders.push({ codec, got });
  }
  const publisher = await GatewayClient.connect(url, { token: valid });
  clients.push(publisher);
  let published = 0;
  const publishNext = async () => {
    const n = published++;
    if (n % 2 === 0) await publisher.pub(BYSTANDER, { n, pad: 'x'.repeat(n % 300) });
    else {
      const res = await fetch(`${http}/publish`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` }, body: JSON.stringify({ topic: BYSTANDER, data: { n, pad: 'x'.repeat(n % 300) } }) });
      if (res.status !== 200) failures.push(`bystander publish ${n} over HTTP: ${res.status}`);
    }
  };
  await publishNext();

  const lanes = Array.from({ length: options.lanes }, (_, i) => ({
    json: new LaneSocket(gw.port, 'json', valid, i, counters, i < 2),
    msgpack: new LaneSocket(gw.port, 'msgpack', valid, i, counters, i < 2),
  }));
  // Warm-up: every lane connected and answered once, then RSS is taken.
  for (const l of lanes) {
    await l.json.send(Buffer.from('{"op":"ping"}'));
    await l.json.barrier();
    await l.msgpack.send(packr.pack({ op: 'ping' }));
    await l.msgpack.barrier();
  }
  await sleep(500);
  const rssBefore = rssOf(gw.child.pid as number);
  let rssPeak = rssBefore;

  let produced = 0;
  let batch: FuzzInput[] = [];
  let batchAt = 0;
  let batchNo = 0;
  const next = (): FuzzInput | null => {
    if (produced >= options.inputs || failures.length > 0) return null;
    if (batchAt >= batch.length) {
      batch = fc.sample(arb, { seed: options.seed + batchNo++, numRuns: BATCH }).flat();
      batchAt = 0;
    }
    produced++;
    return batch[batchAt++] as FuzzInput;
  };
  const describe = (input: FuzzInput): string => {
    const bytes = input.kind === 'command' ? input.frame : input.kind === 'frames' ? input.bytes : input.request;
    return `${input.kind}${'codec' in input ? '/' + input.codec : ''}: ${Buffer.from(bytes).subarray(0, 2048).toString('base64')}`;
  };

  const runOne = async (lane: (typeof lanes)[number], input: FuzzInput): Promise<void> => {
    byKind[input.kind]++;
    switch (input.kind) {
      case 'command':
        return lane[input.codec].send(input.frame);
      case 'frames': {
        let ws: RawWs;
        try {
          ws = await RawWs.connect(gw.port, { protocol: `wsgate.${input.codec}`, headers: { authorization: `Bearer ${valid}` } });
        } catch {
          counters.stalls++;
          return;
        }
        ws.sink = () => {};
        ws.sendBytes(input.bytes);
        if (wholeFrames(input.bytes)) {
          // A ping command after the frames: answered (or the connection closed) once they were handled.
          const frame = input.codec === 'json' ? Buffer.from('{"op":"ping","id":1}') : packr.pack({ op: 'ping', id: 1 });
          let answered = false;
          ws.sink = (f) => (answered ||= f.opcode === Op.Text || f.opcode === Op.Binary);
          ws.send({ opcode: input.codec === 'json' ? Op.Text : Op.Binary, payload: frame });
          try {
            await ws.until(() => (answered || ws.tcpClosed ? true : undefined), TIMEOUT_MS, 'answer to raw frames');
          } catch {
            counters.unanswered++;
          }
        }
        ws.socket.end();
        return;
      }
      case 'http':
        try {
          // The request says `connection: close`; a half-close after it makes a server waiting for a body it
          // will never get (a Content-Length too large) close at once instead of timing out.
          const { head } = await rawRequest(gw.port, input.request, 1000, false, true);
          httpStatuses[head.status] = (httpStatuses[head.status] ?? 0) + 1;
        } catch {
          httpStatuses.none = (httpStatuses.none ?? 0) + 1;
        }
        return;
      case 'upgrade':
        try {
          // uWS waits silently on a head it cannot parse (an unusable request line): a half-close after
          // anything that is not a GET ends it at once, and a GET (maybe an upgrade) keeps the socket open.
          const get = input.request.subarray(0, 4).toString('latin1') === 'GET ';
          const { socket, head } = await rawRequest(gw.port, input.request, 1000, get, !get);
          if (head.status === 101) {
            upgradesAccepted++;
            socket.write(input.after);
            socket.end();
            setTimeout(() => socket.destroy(), 200).unref();
          } else socket.destroy();
          httpStatuses[`upgrade ${head.status}`] = (httpStatuses[`upgrade ${head.status}`] ?? 0) + 1;
        } catch {
          httpStatuses['upgrade none'] = (httpStatuses['upgrade none'] ?? 0) + 1;
        }
        return;
    }
  };

  const started = Date.now();
  let done = 0;
  let running = true;
  // The bystanders' stream runs through the whole fuzz run, over the socket and over HTTP.
  const bystanderStream = (async () => {
    while (running && failures.length === 0) {
      await publishNext();
      await sleep(10);
    }
  })();
  let lastProgress = started;
  const watch = setInterval(() => {
    if (gw.child.exitCode !== null || gw.child.signalCode !== null) return;
    rssPeak = Math.max(rssPeak, rssOf(gw.child.pid as number));
    if (options.progress !== null && Date.now() - lastProgress >= 5000) {
      lastProgress = Date.now();
      const s = (Date.now() - started) / 1000;
      options.progress(`${done} inputs, ${Math.round(done / s)}/s, RSS ${Math.round(rssOf(gw.child.pid as number) / 1048576)} MiB, closes ${counters.serverCloses}, stalls ${counters.stalls}`);
    }
  }, 1000);
  let stopping = false;
  void gw.exited.then((code) => stopping || failures.push(`gateway exited (code ${code}, signal ${gw.child.signalCode}):\n${gw.output().slice(-4000)}`));

  await Promise.all(
    lanes.map(async (lane) => {
      const recent: string[] = [];
      for (let input = next(); input !== null; input = next()) {
        recent.push(describe(input));
        if (recent.length > 8) recent.shift();
        await runOne(lane, input);
        done++;
        if (gw.child.exitCode !== null || gw.child.signalCode !== null) break;
      }
      if (failures.length > 0) lastInputs.push(...recent);
    }),
  );
  const durationMs = Date.now() - started;
  clearInterval(watch);
  running = false;
  await bystanderStream.catch((e: Error) => failures.push(`bystander publisher: ${e.message}`));

  if (failures.length === 0) {
    for (const l of lanes) {
      await l.json.barrier();
      await l.msgpack.barrier();
      l.json.close();
      l.msgpack.close();
    }
    await publishNext();
    const deadline = Date.now() + 10_000;
    while (bystanders.some((b) => b.got.length < published) && Date.now() < deadline) await sleep(20);
    for (const b of bystanders) {
      const ns = b.got.map((d) => (d.d as { n: number }).n);
      const bad = ns.findIndex((n, i) => n !== i);
      if (ns.length !== published || bad >= 0) failures.push(`bystander ${b.codec}: got ${ns.length} of ${published}, first out of order at ${bad}`);
      const seqs = b.got.map((d) => d.s);
      if (seqs.some((s, i) => i > 0 && s !== (seqs[i - 1] as number) + 1)) failures.push(`bystander ${b.codec}: sequence numbers not contiguous`);
    }
    const polluted = await metric(http, 'wsgate_prototype_changes');
    if (polluted !== 0) failures.push(`wsgate_prototype_changes is ${polluted}`);
    if ((await fetch(`${http}/healthz`)).status !== 200) failures.push('healthz not 200 after the run');
  }
  await sleep(2000);
  const alive = gw.child.exitCode === null && gw.child.signalCode === null;
  const rssAfter = alive ? rssOf(gw.child.pid as number) : NaN;
  if (alive && rssAfter > rssBefore + RSS_GROWTH_BOUND) failures.push(`RSS grew from ${rssBefore} to ${rssAfter} bytes (bound: +${RSS_GROWTH_BOUND})`);
  await Promise.all(clients.map((c) => c.close()));
  stopping = true;
  await gw.stop();
  return {
    seed: options.seed,
    inputs: done,
    byKind,
    durationMs,
    inputsPerSecond: Math.round((done / durationMs) * 1000),
    rssBefore,
    rssAfter,
    rssPeak,
    serverCloses: counters.serverCloses,
    stalls: counters.stalls,
    unanswered: counters.unanswered,
    upgradesAccepted,
    httpStatuses,
    bystanderPublished: published,
    failures,
    lastInputs,
  };
}
