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
const MAX_PAYLOAD = 16 * 1024;
const MAX_DEPTH = 64;
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
    private readonly counters: Counters,
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

/** The gateway under test: small limits, so that generated inputs reach them. */
function fuzzGateway(options: FuzzOptions): Promise<ChildGateway> {
  return spawnGateway([
    '--client-publish',
    '--api-key',
    API_KEY,
    '--jwt-secret',
    SECRET,
    '--max-payload',
    String(MAX_PAYLOAD),
    '--max-depth',
    String(MAX_DEPTH),
    '--max-body',
    String(64 * 1024),
    // The command-rate limiter answers before a frame is decoded: off, so every fuzzed command reaches the decoder.
    '--max-commands-per-second',
    '0',
    ...(options.extraFlags ?? []),
  ], {}, options.extraFlags === undefined ? undefined : 40_000);
}

/** One subscriber per codec and a publisher numbering its messages, on a topic no input names. */
class Bystanders {
  published = 0;
  private constructor(
    private readonly http: string,
    private readonly publisher: GatewayClient,
    private readonly receivers: { codec: Codec; got: Delivery[]; client: GatewayClient }[],
  ) {}

  static async connect(url: string, http: string, token: string): Promise<Bystanders> {
    const receivers: { codec: Codec; got: Delivery[]; client: GatewayClient }[] = [];
    for (const codec of ['json', 'msgpack'] as const) {
      const client = await GatewayClient.connect(url, { codec, token });
      const got: Delivery[] = [];
      client.onDelivery = (d) => got.push(d);
      await client.sub(BYSTANDER);
      receivers.push({ codec, got, client });
    }
    return new Bystanders(http, await GatewayClient.connect(url, { token }), receivers);
  }

  /** The next numbered message: over the socket and over HTTP in turn. */
  async publishNext(failures: string[]): Promise<void> {
    const n = this.published++;
    const data = { n, pad: 'x'.repeat(n % 300) };
    if (n % 2 === 0) return void (await this.publisher.pub(BYSTANDER, data));
    const res = await fetch(`${this.http}/publish`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` }, body: JSON.stringify({ topic: BYSTANDER, data }) });
    if (res.status !== 200) failures.push(`bystander publish ${n} over HTTP: ${res.status}`);
  }

  /** Every message published, once, in order, with contiguous sequence numbers, for each codec. */
  async check(failures: string[]): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (this.receivers.some((b) => b.got.length < this.published) && Date.now() < deadline) await sleep(20);
    for (const b of this.receivers) {
      const ns = b.got.map((d) => (d.d as { n: number }).n);
      const bad = ns.findIndex((n, i) => n !== i);
      if (ns.length !== this.published || bad >= 0) failures.push(`bystander ${b.codec}: got ${ns.length} of ${this.published}, first out of order at ${bad}`);
      const seqs = b.got.map((d) => d.s);
      if (seqs.some((s, i) => i > 0 && s !== (seqs[i - 1] as number) + 1)) failures.push(`bystander ${b.codec}: sequence numbers not contiguous`);
    }
  }

  close(): Promise<unknown> {
    return Promise.all([this.publisher, ...this.receivers.map((r) => r.client)].map((c) => c.close()));
  }
}

/** Generated inputs in batches of BATCH from consecutive seeds, up to the count asked for. */
class InputSource {
  produced = 0;
  private batch: FuzzInput[] = [];
  private at = 0;
  private batchNo = 0;

  constructor(
    private readonly arb: fc.Arbitrary<FuzzInput[]>,
    private readonly seed: number,
    private readonly count: number,
  ) {}

  next(): FuzzInput | null {
    if (this.produced >= this.count) return null;
    if (this.at >= this.batch.length) {
      this.batch = fc.sample(this.arb, { seed: this.seed + this.batchNo++, numRuns: BATCH }).flat();
      this.at = 0;
    }
    this.produced++;
    return this.batch[this.at++] as FuzzInput;
  }
}

function describeInput(input: FuzzInput): string {
  const bytes = input.kind === 'command' ? input.frame : input.kind === 'frames' ? input.bytes : input.request;
  return `${input.kind}${'codec' in input ? '/' + input.codec : ''}: ${Buffer.from(bytes).subarray(0, 2048).toString('base64')}`;
}

/** Raw frames on a fresh connection; whole frames are followed by a ping that must be answered (or the connection closed). */
async function sendFrames(port: number, token: string, input: Extract<FuzzInput, { kind: 'frames' }>, counters: Counters): Promise<void> {
  let ws: RawWs;
  try {
    ws = await RawWs.connect(port, { protocol: `wsgate.${input.codec}`, headers: { authorization: `Bearer ${token}` } });
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
}

const tally = (statuses: Record<string, number>, key: string): void => void (statuses[key] = (statuses[key] ?? 0) + 1);

async function sendHttp(port: number, input: Extract<FuzzInput, { kind: 'http' }>, statuses: Record<string, number>): Promise<void> {
  try {
    // The request says `connection: close`; a half-close after it makes a server waiting for a body it
    // will never get (a Content-Length too large) close at once instead of timing out.
    const { head } = await rawRequest(port, input.request, 1000, false, true);
    tally(statuses, String(head.status));
  } catch {
    tally(statuses, 'none');
  }
}

/** A generated upgrade request, and the bytes after it when it is accepted; whether it was. */
async function sendUpgrade(port: number, input: Extract<FuzzInput, { kind: 'upgrade' }>, statuses: Record<string, number>): Promise<boolean> {
  try {
    // uWS waits silently on a head it cannot parse (an unusable request line): a half-close after
    // anything that is not a GET ends it at once, and a GET (maybe an upgrade) keeps the socket open.
    const get = input.request.subarray(0, 4).toString('latin1') === 'GET ';
    const { socket, head } = await rawRequest(port, input.request, 1000, get, !get);
    if (head.status === 101) {
      socket.write(input.after);
      socket.end();
      setTimeout(() => socket.destroy(), 200).unref();
    } else socket.destroy();
    tally(statuses, `upgrade ${head.status}`);
    return head.status === 101;
  } catch {
    tally(statuses, 'upgrade none');
    return false;
  }
}

interface Counters {
  serverCloses: number;
  stalls: number;
  unanswered: number;
}

type Lane = { json: LaneSocket; msgpack: LaneSocket };

/** The run's state, shared by its lanes. */
class FuzzRun {
  readonly failures: string[] = [];
  readonly lastInputs: string[] = [];
  readonly counters: Counters = { serverCloses: 0, stalls: 0, unanswered: 0 };
  readonly byKind: Record<FuzzInput['kind'], number> = { command: 0, frames: 0, http: 0, upgrade: 0 };
  readonly httpStatuses: Record<string, number> = {};
  upgradesAccepted = 0;
  done = 0;

  constructor(
    private readonly gw: ChildGateway,
    private readonly token: string,
    private readonly inputs: InputSource,
  ) {}

  get alive(): boolean {
    return this.gw.child.exitCode === null && this.gw.child.signalCode === null;
  }

  private async runOne(lane: Lane, input: FuzzInput): Promise<void> {
    this.byKind[input.kind]++;
    const port = this.gw.port;
    if (input.kind === 'command') return lane[input.codec].send(input.frame);
    if (input.kind === 'frames') return sendFrames(port, this.token, input, this.counters);
    if (input.kind === 'http') return sendHttp(port, input, this.httpStatuses);
    if (await sendUpgrade(port, input, this.httpStatuses)) this.upgradesAccepted++;
  }

  /** Feeds inputs to the lane until they run out, a failure is seen or the gateway is gone. */
  async drive(lane: Lane): Promise<void> {
    const recent: string[] = [];
    for (let input = this.next(); input !== null; input = this.next()) {
      recent.push(describeInput(input));
      if (recent.length > 8) recent.shift();
      await this.runOne(lane, input);
      this.done++;
      if (!this.alive) break;
    }
    if (this.failures.length > 0) this.lastInputs.push(...recent);
  }

  private next(): FuzzInput | null {
    return this.failures.length > 0 ? null : this.inputs.next();
  }
}

/** Lanes connected and answered once (then RSS is taken as the baseline). */
async function openLanes(port: number, token: string, count: number, counters: Counters): Promise<Lane[]> {
  const lanes = Array.from({ length: count }, (_, i) => ({
    json: new LaneSocket(port, 'json', token, i, counters, i < 2),
    msgpack: new LaneSocket(port, 'msgpack', token, i, counters, i < 2),
  }));
  for (const l of lanes) {
    await l.json.send(Buffer.from('{"op":"ping"}'));
    await l.json.barrier();
    await l.msgpack.send(packr.pack({ op: 'ping' }));
    await l.msgpack.barrier();
  }
  return lanes;
}

/** After the inputs: lanes answered and closed, the bystanders' streams whole, prototypes untouched, health 200. */
async function checkAfter(lanes: Lane[], bystanders: Bystanders, http: string, failures: string[]): Promise<void> {
  for (const l of lanes) {
    await l.json.barrier();
    await l.msgpack.barrier();
    l.json.close();
    l.msgpack.close();
  }
  await bystanders.publishNext(failures);
  await bystanders.check(failures);
  const polluted = await metric(http, 'wsgate_prototype_changes');
  if (polluted !== 0) failures.push(`wsgate_prototype_changes is ${polluted}`);
  if ((await fetch(`${http}/healthz`)).status !== 200) failures.push('healthz not 200 after the run');
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const gw = await fuzzGateway(options);
  const http = `http://127.0.0.1:${gw.port}`;
  const tokens = await makeTokens();
  const valid = tokens[0] as string;
  const arb = inputArbitrary({ maxPayload: MAX_PAYLOAD, maxDepth: MAX_DEPTH, apiKey: API_KEY, tokens, reservedTopic: BYSTANDER });
  const run = new FuzzRun(gw, valid, new InputSource(arb, options.seed, options.inputs));
  const failures = run.failures;
  const bystanders = await Bystanders.connect(`ws://127.0.0.1:${gw.port}/ws`, http, valid);
  await bystanders.publishNext(failures);
  const lanes = await openLanes(gw.port, valid, options.lanes, run.counters);
  await sleep(500);
  const rssBefore = rssOf(gw.child.pid as number);
  let rssPeak = rssBefore;

  const started = Date.now();
  let running = true;
  // The bystanders' stream runs through the whole fuzz run, over the socket and over HTTP.
  const bystanderStream = (async () => {
    while (running && failures.length === 0) {
      await bystanders.publishNext(failures);
      await sleep(10);
    }
  })();
  let lastProgress = started;
  const watch = setInterval(() => {
    if (!run.alive) return;
    rssPeak = Math.max(rssPeak, rssOf(gw.child.pid as number));
    if (options.progress !== null && Date.now() - lastProgress >= 5000) {
      lastProgress = Date.now();
      const s = (Date.now() - started) / 1000;
      options.progress(`${run.done} inputs, ${Math.round(run.done / s)}/s, RSS ${Math.round(rssOf(gw.child.pid as number) / 1048576)} MiB, closes ${run.counters.serverCloses}, stalls ${run.counters.stalls}`);
    }
  }, 1000);
  let stopping = false;
  void gw.exited.then((code) => stopping || failures.push(`gateway exited (code ${code}, signal ${gw.child.signalCode}):\n${gw.output().slice(-4000)}`));

  await Promise.all(lanes.map((lane) => run.drive(lane)));
  const durationMs = Date.now() - started;
  clearInterval(watch);
  running = false;
  await bystanderStream.catch((e: Error) => failures.push(`bystander publisher: ${e.message}`));
  if (failures.length === 0) await checkAfter(lanes, bystanders, http, failures);
  await sleep(2000);
  const rssAfter = run.alive ? rssOf(gw.child.pid as number) : NaN;
  if (run.alive && rssAfter > rssBefore + RSS_GROWTH_BOUND) failures.push(`RSS grew from ${rssBefore} to ${rssAfter} bytes (bound: +${RSS_GROWTH_BOUND})`);
  await bystanders.close();
  stopping = true;
  await gw.stop();
  const { counters, byKind, httpStatuses, upgradesAccepted, lastInputs, done: inputs } = run;
  return { seed: options.seed, inputs, byKind, durationMs, inputsPerSecond: Math.round((inputs / durationMs) * 1000), rssBefore, rssAfter, rssPeak, ...counters, upgradesAccepted, httpStatuses, bystanderPublished: bystanders.published, failures, lastInputs };
}
