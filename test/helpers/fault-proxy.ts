import { type Server, type Socket, connect, createServer } from 'node:net';

/**
 * A TCP proxy between a gateway and its broker that injects faults into live connections: delay,
 * throttle, stall (stops reading both ways without closing, so TCP backpressure reaches both ends),
 * reset (RST), cut in the middle of a message from the broker, and swallow (the node's bytes reach the
 * broker, the broker's replies are dropped: with a reset after it, a request applied whose reply was lost),
 * and blackhole (every byte dropped both ways: a request that never arrived, its caller still waiting).
 * Tests switch modes while traffic flows.
 */
export type Mode = { readonly kind: 'pass' } | { readonly kind: 'swallow'; readonly from?: RegExp } | { readonly kind: 'blackhole' } | { readonly kind: 'delay'; readonly ms: number } | { readonly kind: 'throttle'; readonly bytesPerSecond: number } | { readonly kind: 'stall' };

interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
}

const TICK_MS = 10;

export class FaultProxy {
  private mode: Mode = { kind: 'pass' };
  private readonly pairs = new Set<Pair>();
  private refusing = false;
  private cutNext = false;
  private swallowing = false;
  /** Connections accepted so far (reconnects show here). */
  accepted = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly targetPort: number,
  ) {}

  static async start(targetPort: number): Promise<FaultProxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = new FaultProxy(server, (server.address() as { port: number }).port, targetPort);
    server.on('connection', (c) => proxy.accept(c));
    return proxy;
  }

  private accept(client: Socket): void {
    if (this.refusing) {
      client.resetAndDestroy();
      return;
    }
    this.accepted++;
    const upstream = connect({ host: '127.0.0.1', port: this.targetPort });
    const pair: Pair = { client, upstream };
    this.pairs.add(pair);
    const drop = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    this.pipe(client, upstream, false);
    this.pipe(upstream, client, true);
    if (this.mode.kind === 'stall') {
      client.pause();
      upstream.pause();
    }
  }

  /** Forwards `from` to `to` under the current mode; chunks stay in order whatever the mode. */
  private pipe(from: Socket, to: Socket, fromBroker: boolean): void {
    const queue: { chunk: Buffer; at: number }[] = [];
    let timer: NodeJS.Timeout | null = null;
    let budget = 0;
    const pump = () => {
      timer = null;
      const now = Date.now();
      const m = this.mode;
      if (m.kind === 'throttle') budget = Math.min(budget + (m.bytesPerSecond * TICK_MS) / 1000, m.bytesPerSecond);
      while (queue.length > 0 && !to.destroyed) {
        const head = queue[0] as { chunk: Buffer; at: number };
        if (m.kind === 'delay' && head.at + m.ms > now) break;
        if (m.kind === 'throttle') {
          if (budget < 1) break;
          const n = Math.min(head.chunk.length, Math.floor(budget));
          budget -= n;
          to.write(head.chunk.subarray(0, n));
          if (n < head.chunk.length) {
            head.chunk = head.chunk.subarray(n);
            break;
          }
        } else to.write(head.chunk);
        queue.shift();
      }
      if (queue.length > 0 && timer === null) timer = setTimeout(pump, TICK_MS);
    };
    from.on('data', (chunk: Buffer) => {
      if (fromBroker && this.cutNext && chunk.length >= 2) {
        // Half of a broker message, then the connection is gone.
        this.cutNext = false;
        to.write(chunk.subarray(0, chunk.length >> 1), () => {
          to.destroy();
          from.destroy();
        });
        return;
      }
      if (this.mode.kind === 'blackhole' || (fromBroker && this.swallows(chunk))) return;
      queue.push({ chunk, at: Date.now() });
      if (timer === null) pump();
    });
  }

  /** In `swallow`: drops the broker's bytes from the first chunk matching `from` (any chunk without it) on. */
  private swallows(chunk: Buffer): boolean {
    const m = this.mode;
    if (m.kind !== 'swallow') return false;
    if (!this.swallowing && m.from !== undefined && !m.from.test(chunk.toString('latin1'))) return false;
    this.swallowing = true;
    return true;
  }

  /** Applies to live connections and new ones. Leaving `stall` resumes reading with nothing lost. */
  set(mode: Mode): void {
    const wasStalled = this.mode.kind === 'stall';
    this.mode = mode;
    this.swallowing = false;
    for (const { client, upstream } of this.pairs) {
      if (mode.kind === 'stall') {
        client.pause();
        upstream.pause();
      } else if (wasStalled) {
        client.resume();
        upstream.resume();
      }
    }
  }

  /** Resets every live connection (RST both ways) and refuses new ones for `downMs`. */
  async reset(downMs: number): Promise<void> {
    this.refusing = true;
    for (const { client, upstream } of this.pairs) {
      client.resetAndDestroy();
      upstream.resetAndDestroy();
    }
    this.pairs.clear();
    await new Promise((r) => setTimeout(r, downMs));
    this.refusing = false;
  }

  /** The next chunk from the broker is cut in half and its connection closed. */
  cutMidMessage(): void {
    this.cutNext = true;
  }

  get connections(): number {
    return this.pairs.size;
  }

  async close(): Promise<void> {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
