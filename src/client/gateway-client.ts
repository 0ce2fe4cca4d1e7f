import WebSocket from 'ws';
import { type CodecName, type Reply } from '../protocol/codec';
import { packr, unpackr } from '../protocol/msgpack';

/** A delivery as received: topic, per-topic sequence, data. */
export interface Delivery {
  readonly t: string;
  readonly s: number;
  readonly d: unknown;
}

export type OkReply = Extract<Reply, { op: 'ok' }>;

/** The error a command got back, as a value with the server's stable code. */
export class CommandError extends Error {
  constructor(
    readonly code: string,
    readonly reason: string,
  ) {
    super(`${code}: ${reason}`);
  }
}

/** The gateway refused the WebSocket upgrade with an HTTP status; `body` is its `{"code","reason"}` reply. */
export class UpgradeRefused extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`upgrade refused: HTTP ${status} ${body}`);
  }
}

export interface ClientOptions {
  readonly codec?: CodecName;
  readonly token?: string;
  readonly topics?: readonly string[];
}

/**
 * A minimal Node client for one connection: commands return promises settled by the id-matched reply.
 * Used by the CLI and tests; it does not reconnect.
 */
export class GatewayClient {
  readonly ws: WebSocket;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: OkReply) => void; reject: (e: Error) => void }>();
  private readonly binary: boolean;
  onDelivery: (d: Delivery) => void = () => {};
  onNotice: (r: Reply) => void = () => {};

  private constructor(ws: WebSocket, codec: CodecName) {
    this.ws = ws;
    this.binary = codec === 'msgpack';
    ws.on('message', (data: Buffer) => this.receive(this.binary ? unpackr.unpack(data) : JSON.parse(data.toString('utf8'))));
    ws.on('close', () => {
      for (const p of this.pending.values()) p.reject(new Error('connection closed'));
      this.pending.clear();
    });
  }

  static connect(url: string, options: ClientOptions = {}): Promise<GatewayClient> {
    const codec = options.codec ?? 'json';
    const u = new URL(url);
    if (options.topics?.length) u.searchParams.set('topics', options.topics.join(','));
    const headers: Record<string, string> = options.token ? { authorization: `Bearer ${options.token}` } : {};
    const ws = new WebSocket(u, codec === 'msgpack' ? 'wsgate.msgpack' : 'wsgate.json', { headers });
    const client = new GatewayClient(ws, codec);
    return new Promise((resolve, reject) => {
      // Once the refusal's status is known, a reset while its body is read must not turn it into a network error.
      let refused = false;
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => {
        refused = true;
        let body = '';
        const done = () => reject(new UpgradeRefused(res.statusCode ?? 0, body));
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (body.length < 4096) body += chunk;
        });
        res.on('end', done);
        res.on('close', done);
      });
      ws.once('error', (e) => {
        if (!refused) reject(e);
      });
    });
  }

  private receive(msg: Record<string, unknown>): void {
    // Deliveries carry `s`; notices about a topic (join, leave) carry `t` and an `op`.
    if (typeof msg.t === 'string' && typeof msg.s === 'number') return this.onDelivery(msg as unknown as Delivery);
    const reply = msg as Reply;
    const id = 'id' in reply ? reply.id : undefined;
    const p = id === undefined ? undefined : this.pending.get(id);
    if (p === undefined) return this.onNotice(reply);
    this.pending.delete(id as number);
    if (reply.op === 'ok') p.resolve(reply);
    else if (reply.op === 'err') p.reject(new CommandError(reply.code, reply.reason));
  }

  /** Sends a raw command object and waits for its reply. */
  command(cmd: Record<string, unknown>): Promise<OkReply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(this.binary ? packr.pack({ ...cmd, id }) : JSON.stringify({ ...cmd, id }));
    });
  }

  sub(topic: string, since?: { seq: number; epoch: string }): Promise<OkReply> {
    return this.command(since ? { op: 'sub', topic, since } : { op: 'sub', topic });
  }

  unsub(topic: string): Promise<OkReply> {
    return this.command({ op: 'unsub', topic });
  }

  pub(topic: string, data: unknown): Promise<OkReply> {
    return this.command({ op: 'pub', topic, data });
  }

  ping(): Promise<OkReply> {
    return this.command({ op: 'ping' });
  }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve());
      this.ws.close();
    });
  }
}
