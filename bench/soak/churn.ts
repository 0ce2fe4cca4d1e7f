/**
 * The soak's `churn` load, run as its own process (pinned to the generator core) with `ws` clients:
 * connection churn, sub/unsub churn, steady publishing to many topics, slow consumers that get cut
 * with 4008 and come back, token refreshes when the gateway wants a JWT, and a quiet check topic
 * whose subscribers must receive every message. Started with the plan as JSON in argv[2]; sends its
 * ChurnReport over IPC when done.
 */
import { createHmac } from 'node:crypto';
import type { Socket } from 'node:net';
import WebSocket from 'ws';

export interface ChurnPlan {
  port: number;
  durationMs: number;
  /** HS256 secret the gateway verifies tokens with; null: no tokens. */
  jwtSecret: string | null;
  topics: number;
  /** Churning subscriber connections (each on `topicsPerConn` random topics). */
  conns: number;
  topicsPerConn: number;
  /** Connections closed and replaced per second. */
  connChurnPerSec: number;
  /** unsub + sub pairs per second on open connections. */
  subChurnPerSec: number;
  publishers: number;
  publishRate: number;
  payloadBytes: number;
  checkSubscribers: number;
  checkRate: number;
  slowConsumers: number;
  firehoseRate: number;
  firehoseBytes: number;
  /** Lifetime of churning connections' tokens; they refresh at half of it. */
  tokenTtlS: number;
}

export interface ChurnReport {
  connects: number;
  connectFailures: number;
  closesByCode: Record<string, number>;
  subChurnOps: number;
  replyErrors: Record<string, number>;
  published: number;
  deliveries: number;
  check: { published: number; subscribers: number; expected: number; received: number; lost: number; gaps: number; disconnects: number };
  slowConsumerCuts: number;
  refresh: { sent: number; ok: number; unknownOp: number; otherErrors: number };
}

const b64 = (v: object): string => Buffer.from(JSON.stringify(v)).toString('base64url');

/** An HS256 JWT signed by hand (node:crypto), so the driver needs nothing beyond `ws`. */
function token(secret: string, subject: string, ttlS: number): string {
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: subject, exp: Math.floor(Date.now() / 1000) + ttlS })}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

/** Deliveries are `{"t":…`, replies `{"op":…`: the third byte tells them apart without parsing. */
const T = 0x74;
const SLOW_PAUSE_MS = 30_000;
const CHECK = 'soak.check';
const FIRE = 'soak.fire';
const topicName = (k: number): string => `soak.t.${k}`;
const pick = (n: number): number => Math.floor(Math.random() * n);

interface Reply {
  op?: string;
  id?: number;
  code?: string;
  t?: string;
  s?: number;
}

export class ChurnLoad {
  readonly report: ChurnReport = {
    connects: 0,
    connectFailures: 0,
    closesByCode: {},
    subChurnOps: 0,
    replyErrors: {},
    published: 0,
    deliveries: 0,
    check: { published: 0, subscribers: 0, expected: 0, received: 0, lost: 0, gaps: 0, disconnects: 0 },
    slowConsumerCuts: 0,
    refresh: { sent: 0, ok: 0, unknownOp: 0, otherErrors: 0 },
  };
  private readonly pool: (WebSocket | null)[] = [];
  private readonly poolTopics = new Map<WebSocket, Set<string>>();
  private readonly publishers: WebSocket[] = [];
  private readonly checkLast: number[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private nextId = 1;
  private stopping = false;
  private readonly payload: string;
  private readonly firePayload: string;

  constructor(private readonly plan: ChurnPlan) {
    this.payload = 'x'.repeat(plan.payloadBytes);
    this.firePayload = 'f'.repeat(plan.firehoseBytes);
  }

  private url(topics: readonly string[], ttlS: number): string {
    const q = new URLSearchParams();
    if (topics.length > 0) q.set('topics', topics.join(','));
    if (this.plan.jwtSecret !== null) q.set('token', token(this.plan.jwtSecret, `soak-${this.nextId++}`, ttlS));
    return `ws://127.0.0.1:${this.plan.port}/ws?${q}`;
  }

  /** Opens a socket; resolves when open (or null when it failed), counting either way. */
  private open(topics: readonly string[], ttlS: number, onMessage: (ws: WebSocket, data: Buffer) => void, onClose: (code: number) => void): Promise<WebSocket | null> {
    return new Promise((resolve) => {
      const ws = new WebSocket(this.url(topics, ttlS));
      let opened = false;
      ws.on('open', () => {
        opened = true;
        this.report.connects++;
        resolve(ws);
      });
      ws.on('message', (data: Buffer) => onMessage(ws, data));
      ws.on('error', () => {
        if (!opened) {
          this.report.connectFailures++;
          resolve(null);
        }
      });
      ws.on('close', (code: number) => {
        if (!opened) return;
        this.report.closesByCode[code] = (this.report.closesByCode[code] ?? 0) + 1;
        onClose(code);
      });
    });
  }

  /** Replies to commands: counts errors; refreshes that worked or that the gateway does not know yet. */
  private onReply(ws: WebSocket, r: Reply, refreshIds: Set<number>): void {
    const isRefresh = r.id !== undefined && refreshIds.delete(r.id);
    if (r.op === 'ok') {
      if (isRefresh) {
        this.report.refresh.ok++;
        this.scheduleRefresh(ws, refreshIds);
      }
      return;
    }
    if (r.op !== 'err') return;
    const code = r.code ?? 'unknown';
    if (isRefresh && code === 'unknown_op') this.report.refresh.unknownOp++;
    else if (isRefresh) this.report.refresh.otherErrors++;
    else this.report.replyErrors[code] = (this.report.replyErrors[code] ?? 0) + 1;
  }

  private scheduleRefresh(ws: WebSocket, refreshIds: Set<number>): void {
    const secret = this.plan.jwtSecret;
    if (secret === null) return;
    const timer = setTimeout(() => {
      if (ws.readyState !== WebSocket.OPEN) return;
      const id = this.nextId++;
      refreshIds.add(id);
      this.report.refresh.sent++;
      ws.send(JSON.stringify({ op: 'refresh', token: token(secret, `soak-${id}`, this.plan.tokenTtlS), id }));
    }, (this.plan.tokenTtlS * 1000) / 2);
    ws.once('close', () => clearTimeout(timer));
  }

  private async openPoolSlot(i: number): Promise<void> {
    if (this.stopping) return;
    const topics = new Set<string>();
    while (topics.size < this.plan.topicsPerConn) topics.add(topicName(pick(this.plan.topics)));
    const refreshIds = new Set<number>();
    let ws: WebSocket | null = null;
    ws = await this.open(
      [...topics],
      this.plan.tokenTtlS,
      (sock, data) => {
        if (data[2] === T) this.report.deliveries++;
        else this.onReply(sock, JSON.parse(data.toString()) as Reply, refreshIds);
      },
      () => {
        // Closed by the gateway (token expiry, limits) or by the churn: a slot is refilled either way.
        if (ws !== null && this.pool[i] === ws) this.pool[i] = null;
        if (ws !== null) this.poolTopics.delete(ws);
        setTimeout(() => void this.openPoolSlot(i), 100 + pick(400)).unref();
      },
    );
    if (ws === null) {
      setTimeout(() => void this.openPoolSlot(i), 1000).unref();
      return;
    }
    this.pool[i] = ws;
    this.poolTopics.set(ws, topics);
    this.scheduleRefresh(ws, refreshIds);
  }

  private churnConnections(): void {
    for (let k = 0; k < this.plan.connChurnPerSec; k++) this.pool[pick(this.pool.length)]?.close(1000);
  }

  private churnSubscriptions(): void {
    for (let k = 0; k < this.plan.subChurnPerSec; k++) {
      const ws = this.pool[pick(this.pool.length)];
      const topics = ws ? this.poolTopics.get(ws) : undefined;
      if (!ws || !topics || ws.readyState !== WebSocket.OPEN) continue;
      const old = [...topics][pick(topics.size)];
      const next = topicName(pick(this.plan.topics));
      if (topics.has(next)) continue;
      topics.delete(old);
      topics.add(next);
      ws.send(JSON.stringify({ op: 'unsub', topic: old, id: this.nextId++ }));
      ws.send(JSON.stringify({ op: 'sub', topic: next, id: this.nextId++ }));
      this.report.subChurnOps += 2;
    }
  }

  /** Publishes `rate` messages per second to `topic()` from `from()`, in 10 ms ticks. */
  private every10ms(rate: number, send: () => void): void {
    let owed = 0;
    this.timers.push(
      setInterval(() => {
        owed += rate / 100;
        for (; owed >= 1; owed--) send();
      }, 10),
    );
  }

  /**
   * Stops reading for SLOW_PAUSE_MS, so the gateway's send buffer for it fills until the slow-consumer
   * policy applies; then reads again (and so sees its 4008), leaves, and comes back.
   */
  private async openSlowConsumer(): Promise<void> {
    if (this.stopping) return;
    const ws = await this.open([FIRE], this.plan.durationMs / 1000 + 600, () => undefined, (code) => {
      if (code === 4008) this.report.slowConsumerCuts++;
      setTimeout(() => void this.openSlowConsumer(), 1000).unref();
    });
    if (ws === null) {
      setTimeout(() => void this.openSlowConsumer(), 1000).unref();
      return;
    }
    const socket = (ws as unknown as { _socket: Socket })._socket;
    socket.pause();
    setTimeout(() => {
      socket.resume();
      setTimeout(() => ws.close(1000), 5000).unref();
    }, SLOW_PAUSE_MS).unref();
  }

  async run(): Promise<ChurnReport> {
    const p = this.plan;
    const longTtl = p.durationMs / 1000 + 600;
    const check = this.report.check;
    const checkSubs = await Promise.all(
      Array.from({ length: p.checkSubscribers }, (_, i) => {
        this.checkLast.push(0);
        return this.open(
          [CHECK],
          longTtl,
          (_ws, data) => {
            if (data[2] !== T) return;
            const m = JSON.parse(data.toString()) as Reply;
            if (m.t !== CHECK || m.s === undefined) return;
            check.received++;
            if (this.checkLast[i] !== 0 && m.s !== this.checkLast[i] + 1) check.gaps++;
            this.checkLast[i] = m.s;
          },
          () => {
            if (!this.stopping) check.disconnects++;
          },
        );
      }),
    );
    check.subscribers = checkSubs.filter((w) => w !== null).length;
    for (let i = 0; i < p.conns; i++) this.pool.push(null);
    for (let i = 0; i < p.conns; i += 100) await Promise.all(Array.from({ length: Math.min(100, p.conns - i) }, (_, k) => this.openPoolSlot(i + k)));
    const pubOf = async (): Promise<WebSocket | null> =>
      this.open([], longTtl, (_ws, data) => {
        const r = JSON.parse(data.toString()) as Reply;
        if (r.op === 'err') this.report.replyErrors[r.code ?? 'unknown'] = (this.report.replyErrors[r.code ?? 'unknown'] ?? 0) + 1;
      }, () => undefined);
    for (let i = 0; i < p.publishers; i++) {
      const ws = await pubOf();
      if (ws !== null) this.publishers.push(ws);
    }
    const checkPub = await this.open([], longTtl, (_ws, data) => {
      const r = JSON.parse(data.toString()) as Reply;
      if (r.op === 'ok') check.published++;
    }, () => undefined);
    for (let i = 0; i < p.slowConsumers; i++) await this.openSlowConsumer();
    let rr = 0;
    this.every10ms(p.publishRate, () => {
      const ws = this.publishers[rr++ % this.publishers.length];
      if (ws?.readyState !== WebSocket.OPEN) return;
      ws.send(`{"op":"pub","topic":"${topicName(pick(p.topics))}","data":"${this.payload}"}`);
      this.report.published++;
    });
    this.every10ms(p.firehoseRate, () => {
      const ws = this.publishers[0];
      if (ws?.readyState === WebSocket.OPEN) ws.send(`{"op":"pub","topic":"${FIRE}","data":"${this.firePayload}"}`);
    });
    let checkSeq = 0;
    this.every10ms(p.checkRate, () => {
      if (checkPub?.readyState === WebSocket.OPEN) checkPub.send(`{"op":"pub","topic":"${CHECK}","data":${++checkSeq},"id":${checkSeq}}`);
    });
    this.timers.push(
      setInterval(() => {
        this.churnConnections();
        this.churnSubscriptions();
      }, 1000),
    );
    await new Promise((resolve) => setTimeout(resolve, p.durationMs));
    for (const t of this.timers) clearInterval(t);
    // Let the last check messages arrive before counting.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    this.stopping = true;
    check.expected = check.published * check.subscribers;
    check.lost = Math.max(0, check.expected - check.received);
    for (const ws of [...this.pool, ...this.publishers, ...checkSubs, checkPub]) ws?.terminate();
    return this.report;
  }
}

if (require.main === module) {
  const plan = JSON.parse(process.argv[2] ?? '{}') as ChurnPlan;
  new ChurnLoad(plan)
    .run()
    .then((report) => process.send?.({ type: 'report', report }, () => process.exit(0)))
    .catch((err: Error) => process.send?.({ type: 'error', message: err.stack ?? err.message }, () => process.exit(1)));
}
