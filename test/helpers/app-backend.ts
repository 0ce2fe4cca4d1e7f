import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** One request the application received: path, headers and raw body. */
export interface Received {
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly raw: string;
  readonly body: unknown;
}

/** How the application answers one request; may wait (to time out or to answer late). */
export type Handler = (r: Received, res: ServerResponse) => void | Promise<void>;

/** A real HTTP application backend for proxy and webhook tests: handlers per path, every request recorded. */
export class AppBackend {
  readonly received: Received[] = [];
  private readonly handlers = new Map<string, Handler>();
  private readonly sockets = new Set<Socket>();
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  static async start(): Promise<AppBackend> {
    let self: AppBackend | null = null;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        let body: unknown = undefined;
        try {
          body = JSON.parse(raw);
        } catch {
          body = undefined;
        }
        const r: Received = { path: req.url ?? '', headers: req.headers, raw, body };
        self?.received.push(r);
        const h = self?.handlers.get(r.path);
        if (h === undefined) return json(res, 404, { reason: 'no handler' });
        void h(r, res);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    self = new AppBackend(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return self;
  }

  on(path: string, h: Handler): void {
    this.handlers.set(path, h);
  }

  /** Requests received on `path`. */
  at(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }

  /** Open TCP connections from gateways (keep-alive pool). */
  get connections(): number {
    return this.sockets.size;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
