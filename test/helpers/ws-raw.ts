import { createHash, randomBytes } from 'node:crypto';
import { type Socket, connect } from 'node:net';

/**
 * A WebSocket client written on a raw TCP socket, for the conformance suite and the fuzzer: it can put
 * any bit pattern on the wire (reserved bits, unmasked frames, oversized control frames, non-minimal
 * lengths), which no WebSocket library will send.
 */

export const Op = { Cont: 0x0, Text: 0x1, Binary: 0x2, Close: 0x8, Ping: 0x9, Pong: 0xa } as const;

export interface FrameSpec {
  readonly opcode: number;
  readonly payload?: Uint8Array;
  /** FIN bit; default true. */
  readonly fin?: boolean;
  /** RSV1..3 as a 3-bit number; default 0. */
  readonly rsv?: number;
  /** Masking key; null sends the frame unmasked (forbidden for clients, RFC 6455 §5.1). Default: random. */
  readonly mask?: Uint8Array | null;
  /** Length encoding; default the minimal one. 16/64 force the extended forms (RFC 6455 §5.2 requires minimal). */
  readonly lengthForm?: 'minimal' | 16 | 64;
}

// Masks only need to be unpredictable to intermediaries (RFC 6455 §10.3), not cryptographically strong here.
const randomMask = (): Buffer => {
  const m = Buffer.alloc(4);
  m.writeUInt32BE((Math.random() * 0x100000000) >>> 0);
  return m;
};

export function encodeFrame(spec: FrameSpec): Buffer {
  const payload = spec.payload ?? new Uint8Array(0);
  const n = payload.length;
  const form = spec.lengthForm ?? 'minimal';
  const len64 = form === 64 || n >= 0x10000;
  const len16 = !len64 && (form === 16 || n >= 126);
  const mask = spec.mask === undefined ? randomMask() : spec.mask;
  const head = Buffer.alloc(2 + (len64 ? 8 : len16 ? 2 : 0) + (mask === null ? 0 : 4));
  head[0] = ((spec.fin ?? true) ? 0x80 : 0) | (((spec.rsv ?? 0) & 7) << 4) | (spec.opcode & 0x0f);
  head[1] = (mask === null ? 0 : 0x80) | (len64 ? 127 : len16 ? 126 : n);
  let p = 2;
  if (len16) p = head.writeUInt16BE(n, p);
  else if (len64) {
    head.writeUInt32BE(Math.floor(n / 0x100000000), p);
    p = head.writeUInt32BE(n >>> 0, p + 4);
  }
  const body = Buffer.from(payload);
  if (mask !== null) {
    head.set(mask, p);
    for (let i = 0; i < n; i++) body[i] = (body[i] as number) ^ (mask[i & 3] as number);
  }
  return Buffer.concat([head, body]);
}

/** A close frame payload: 2-byte code and UTF-8 reason (RFC 6455 §5.5.1). */
export function closePayload(code: number, reason = ''): Buffer {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code, 0);
  b.write(reason, 2);
  return b;
}

export interface Frame {
  readonly fin: boolean;
  readonly rsv: number;
  readonly opcode: number;
  readonly masked: boolean;
  readonly payload: Buffer;
}

/** Splits server bytes into frames (no limits: tests only). */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  /** Bytes of an incomplete frame held back. */
  get pending(): number {
    return this.buf.length;
  }

  /** Frames completed by `chunk` (server frames may also be masked here, so a test can say they were). */
  push(chunk: Buffer): Frame[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Frame[] = [];
    for (;;) {
      const b = this.buf;
      if (b.length < 2) break;
      const masked = ((b[1] as number) & 0x80) !== 0;
      let n = (b[1] as number) & 0x7f;
      let p = 2;
      if (n === 126) {
        if (b.length < 4) break;
        n = b.readUInt16BE(2);
        p = 4;
      } else if (n === 127) {
        if (b.length < 10) break;
        n = b.readUInt32BE(2) * 0x100000000 + b.readUInt32BE(6);
        p = 10;
      }
      const maskAt = p;
      if (masked) p += 4;
      if (b.length < p + n) break;
      const payload = masked ? Buffer.from(b.subarray(p, p + n)) : b.subarray(p, p + n);
      if (masked) for (let i = 0; i < n; i++) payload[i] = (payload[i] as number) ^ (b[maskAt + (i & 3)] as number);
      out.push({ fin: ((b[0] as number) & 0x80) !== 0, rsv: ((b[0] as number) >> 4) & 7, opcode: (b[0] as number) & 0x0f, masked, payload });
      this.buf = b.subarray(p + n);
    }
    return out;
  }
}

export interface HttpHead {
  readonly status: number;
  readonly headers: Record<string, string>;
  /** Bytes received after the header block (body, or the first WebSocket frames after a 101). */
  readonly rest: Buffer;
}

/** Parses an HTTP/1.1 response head from `buf`, or null while it is incomplete. */
export function parseHead(buf: Buffer): HttpHead | null {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number((lines[0] ?? '').split(' ')[1]);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { status, headers, rest: buf.subarray(end + 4) };
}

export const acceptFor = (key: string): string => createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');

export interface ConnectOptions {
  readonly path?: string;
  readonly protocol?: string;
  readonly headers?: Record<string, string>;
  readonly timeoutMs?: number;
}

/** How a connection ended, as the client saw it. */
export interface Ending {
  /** The server's close frame, if one arrived: code (null when the payload was empty) and reason. */
  readonly closeFrame: { code: number | null; reason: string } | null;
  /** Whether the TCP connection was closed by the server (end or reset). */
  readonly tcpClosed: boolean;
}

/** One raw client connection after a successful handshake. */
export class RawWs {
  readonly frames: Frame[] = [];
  private readonly reader = new FrameReader();
  private waiters: (() => void)[] = [];
  tcpClosed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => this.take(d));
    socket.on('close', () => {
      this.tcpClosed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  /** Opens a TCP connection and completes the opening handshake (RFC 6455 §4.1); throws unless 101. */
  static async connect(port: number, options: ConnectOptions = {}): Promise<RawWs> {
    const key = randomBytes(16).toString('base64');
    const headers: Record<string, string> = {
      host: `127.0.0.1:${port}`,
      upgrade: 'websocket',
      connection: 'Upgrade',
      'sec-websocket-key': key,
      'sec-websocket-version': '13',
      ...(options.protocol === undefined ? {} : { 'sec-websocket-protocol': options.protocol }),
      ...options.headers,
    };
    const request = `GET ${options.path ?? '/ws'} HTTP/1.1\r\n` + Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n';
    const { socket, head } = await rawRequest(port, request, options.timeoutMs ?? 5000, true);
    if (head.status !== 101) {
      socket.destroy();
      throw new Error(`upgrade refused: HTTP ${head.status}`);
    }
    if (head.headers['sec-websocket-accept'] !== acceptFor(key)) {
      socket.destroy();
      throw new Error('bad Sec-WebSocket-Accept');
    }
    const ws = new RawWs(socket);
    if (head.rest.length > 0) ws.take(head.rest);
    return ws;
  }

  /** When set, received frames go here instead of into `frames` (long-running clients keep nothing). */
  sink: ((f: Frame) => void) | null = null;

  private take(d: Buffer): void {
    for (const f of this.reader.push(d)) {
      if (this.sink === null) this.frames.push(f);
      else this.sink(f);
    }
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves when `check` holds, re-checked on every arrival; rejects after `ms`. */
  until<T>(check: () => T | undefined, ms = 3000, what = 'frame'): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
      const test = () => {
        const v = check();
        if (v !== undefined) {
          clearTimeout(timer);
          resolve(v);
        } else this.waiters.push(test);
      };
      test();
    });
  }

  send(spec: FrameSpec): void {
    if (!this.socket.destroyed) this.socket.write(encodeFrame(spec));
  }

  sendBytes(b: Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(b);
  }

  text(s: string): void {
    this.send({ opcode: Op.Text, payload: Buffer.from(s) });
  }

  /** Takes the next data or control frame received (in order); rejects after `ms`. */
  async next(ms = 3000): Promise<Frame> {
    const f = await this.until(() => this.frames[0] ?? (this.tcpClosed ? null : undefined), ms, 'next frame');
    if (f === null) throw new Error('connection closed before a frame arrived');
    this.frames.shift();
    return f;
  }

  /** Waits for the server to close TCP, then says what closed it (a close frame or a bare cut). */
  async ending(ms = 3000): Promise<Ending> {
    await this.until(() => (this.tcpClosed ? true : undefined), ms, 'TCP close');
    const close = this.frames.find((f) => f.opcode === Op.Close);
    const closeFrame = close === undefined ? null : { code: close.payload.length >= 2 ? close.payload.readUInt16BE(0) : null, reason: close.payload.subarray(2).toString('utf8') };
    return { closeFrame, tcpClosed: this.tcpClosed };
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * Writes `request` on a new loopback connection and reads the response head. With `keep`, the socket
 * stays open (for an upgrade); otherwise it is destroyed once the head arrived. With `halfClose`, the
 * client's side is ended after the request.
 */
export function rawRequest(port: number, request: string | Buffer, timeoutMs: number, keep = false, halfClose = false): Promise<{ socket: Socket; head: HttpHead }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no response head in time'));
    }, timeoutMs);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const head = parseHead(buf);
      if (head === null) return;
      clearTimeout(timer);
      socket.off('data', onData);
      if (!keep) socket.destroy();
      resolve({ socket, head });
    };
    socket.on('data', onData);
    socket.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      reject(new Error(`connection closed before a response head (${buf.length} bytes)`));
    });
    if (halfClose) socket.end(request);
    else socket.write(request);
  });
}
