import { createServer, type Server, type Socket, connect } from 'node:net';
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';

/** One event as an EventSource listener saw it. */
export interface SeenEvent {
  readonly type: string;
  readonly id: string;
  readonly data: unknown;
}

export const SSE_EVENTS = ['message', 'subscribed', 'gap', 'join', 'leave', 'refused', 'close', 'unsubscribed'] as const;

/** A real `eventsource` client recording every wsgate event; `fetch` lets a test add headers or pick the node. */
export function watch(url: string, init: { fetch?: typeof fetch; headers?: Record<string, string> } = {}): { es: EventSource; events: SeenEvent[]; errors: number[] } {
  const headers = init.headers ?? {};
  const base = init.fetch ?? fetch;
  const es = new EventSource(url, { fetch: (u, i) => base(u, { ...i, headers: { ...(i?.headers as Record<string, string>), ...headers } }) });
  const events: SeenEvent[] = [];
  const errors: number[] = [];
  for (const type of SSE_EVENTS) {
    es.addEventListener(type, (e) => events.push({ type, id: e.lastEventId, data: JSON.parse(e.data) as unknown }));
  }
  es.addEventListener('error', (e) => errors.push((e as unknown as { code?: number }).code ?? 0));
  return { es, events, errors };
}

/** The deliveries among `events`, as `topic:seq`. */
export const delivered = (events: readonly SeenEvent[]): string[] =>
  events.filter((e) => e.type === 'message').map((e) => {
    const d = e.data as { t: string; s: number };
    return `${d.t}:${d.s}`;
  });

/**
 * A TCP front for several gateway nodes, like a load balancer: each new connection goes to the node
 * `ports()` names now, so a client reconnecting after a drain lands on the other node.
 */
export class SwitchProxy {
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(ports: () => number): Promise<SwitchProxy> {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const proxy = new SwitchProxy(server, (server.address() as { port: number }).port);
    server.on('connection', (c) => {
      const up = connect(ports(), '127.0.0.1');
      for (const s of [c, up]) {
        proxy.sockets.add(s);
        s.on('close', () => proxy.sockets.delete(s));
        s.on('error', () => undefined);
      }
      c.pipe(up);
      up.pipe(c);
      c.on('close', () => up.destroy());
      up.on('close', () => c.destroy());
    });
    return proxy;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** Publishes one message through a node's HTTP API. */
export async function publishTo(port: number, topic: string, data: unknown): Promise<void> {
  const r = await fetch(`http://127.0.0.1:${port}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic, data }) });
  assert.equal(r.status, 200);
}
