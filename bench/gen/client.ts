import * as net from 'node:net';
import { createHmac, randomBytes } from 'node:crypto';
import { FrameScanner, FrameSink, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_TEXT, encodeClientFrame } from '../lib/frame';
import { HandshakeReader, newKey, upgradeRequest } from '../lib/handshake';
import { Dialect, PUSHER_BENCH_APP, pusherChannel } from '../lib/dialect';

export interface ClientEvents {
  /** A read is about to be scanned (frames of one read arrived together). */
  onChunk(): void;
  /** The read has been scanned. */
  onChunkDone(): void;
  /** The connection is usable: upgraded, and for Socket.IO joined to its namespace. */
  onReady(c: WsClient): void;
  /** A data frame; `data[start, end)` is valid only during the call. */
  onData(c: WsClient, data: Buffer, start: number, end: number): void;
  /** Called once when the connection ends; `error` is empty for a clean close we asked for. */
  onEnd(c: WsClient, error: string): void;
}

export interface ClientTarget {
  host: string;
  port: number;
  dialect: Dialect;
}

const SIO_OPEN = 0x30; // '0': Engine.IO open
const SIO_MESSAGE = 0x34; // '4': Engine.IO message, followed by a Socket.IO packet type
const SIO_PING = 0x32; // '2'
const SIO_CONNECT = 0x30; // '0' after '4': Socket.IO CONNECT ack

/** One hand-rolled WebSocket client connection; see lib/frame.ts for why it is hand-written. */
export class WsClient implements FrameSink {
  readonly mask = randomBytes(4);
  readonly socket: net.Socket;
  /** Last sequence seen per publisher id (subscribers only). */
  lastSeq: Float64Array | null = null;
  ready = false;
  private ended = false;
  private handshake: HandshakeReader | null;
  private readonly scanner: FrameScanner;
  private readonly socketIo: boolean;
  private readonly pusher: boolean;
  /** Pusher: subscriptions not yet confirmed; ready at 0. */
  private pusherPending: number;

  constructor(
    readonly index: number,
    target: ClientTarget,
    private readonly topics: readonly string[],
    localAddress: string,
    readBuffer: Buffer,
    private readonly events: ClientEvents,
  ) {
    const key = newKey();
    this.handshake = new HandshakeReader(key);
    this.scanner = new FrameScanner(this);
    this.socketIo = target.dialect.name === 'socketio';
    this.pusher = target.dialect.name === 'pusher';
    this.pusherPending = topics.length;
    // `onread` with a shared, preallocated buffer: Node reads into it and calls back synchronously,
    // so no Buffer is allocated per read.
    this.socket = net.connect({
      host: target.host,
      port: target.port,
      localAddress,
      noDelay: true,
      onread: { buffer: readBuffer, callback: (n: number, buf: Uint8Array) => this.onRead(n, buf as Buffer) },
    });
    this.socket.on('connect', () => this.socket.write(upgradeRequest(target.host, target.port, target.dialect.path(topics), key)));
    this.socket.on('error', (err: Error) => this.end(err.message));
    this.socket.on('close', () => this.end(this.ready ? 'closed by server' : 'closed before ready'));
  }

  send(frame: Buffer): void {
    this.socket.write(frame);
  }

  sendText(text: string): void {
    this.socket.write(encodeClientFrame(OP_TEXT, Buffer.from(text), this.mask));
  }

  close(): void {
    if (this.ended) return;
    this.ended = true;
    this.socket.destroy();
    this.events.onEnd(this, '');
  }

  private end(error: string): void {
    if (this.ended) return;
    this.ended = true;
    this.socket.destroy();
    this.events.onEnd(this, error);
  }

  /** Always true: keep reading (false would pause the stream). */
  private onRead(n: number, buf: Buffer): boolean {
    if (this.handshake === null) {
      this.events.onChunk();
      this.scanner.push(buf, 0, n);
      this.events.onChunkDone();
      return true;
    }
    const r = this.handshake.feed(buf, 0, n);
    if (r.kind === 'incomplete') return true;
    if (r.kind === 'error') {
      this.end(r.reason);
      return true;
    }
    this.handshake = null;
    if (!this.socketIo && !this.pusher) this.becomeReady();
    this.events.onChunk();
    this.scanner.push(buf, r.bodyStart, n);
    this.events.onChunkDone();
    return true;
  }

  private becomeReady(): void {
    this.ready = true;
    this.events.onReady(this);
  }

  onFrame(opcode: number, _fin: boolean, data: Buffer, start: number, end: number): void {
    if (opcode === OP_TEXT || opcode === OP_BINARY || opcode === OP_CONT) {
      if (this.socketIo && this.socketIoControl(data, start, end)) return;
      if (this.pusher && !this.ready && this.pusherControl(data.toString('utf8', start, end))) return;
      this.events.onData(this, data, start, end);
    } else if (opcode === OP_PING) {
      this.socket.write(encodeClientFrame(0xa, Buffer.from(data.subarray(start, end)), this.mask));
    } else if (opcode === OP_CLOSE) {
      const code = end - start >= 2 ? data.readUInt16BE(start) : 1005;
      this.socket.write(encodeClientFrame(OP_CLOSE, Buffer.from(data.subarray(start, start + 2)), this.mask));
      this.end(`server closed with ${code}`);
    }
  }

  onProtocolError(reason: string): void {
    this.end(`protocol error: ${reason}`);
  }

  /**
   * Pusher frames before the client is ready (once per connection, so JSON.parse is fine here):
   * connection_established → a signed subscribe per topic; ready when every subscription succeeded.
   */
  private pusherControl(text: string): boolean {
    const frame = JSON.parse(text) as { event?: string; data?: string };
    if (frame.event === 'pusher:connection_established') {
      const socketId = (JSON.parse(frame.data ?? '{}') as { socket_id: string }).socket_id;
      for (const topic of this.topics) {
        const channel = pusherChannel(topic);
        const auth = `${PUSHER_BENCH_APP.key}:${createHmac('sha256', PUSHER_BENCH_APP.secret).update(`${socketId}:${channel}`).digest('hex')}`;
        this.sendText(JSON.stringify({ event: 'pusher:subscribe', data: { channel, auth } }));
      }
      if (this.topics.length === 0) this.becomeReady();
      return true;
    }
    if (frame.event === 'pusher_internal:subscription_succeeded' && --this.pusherPending === 0) this.becomeReady();
    else if (frame.event === 'pusher:error' || frame.event === 'pusher:subscription_error') this.end(`pusher refused: ${text}`);
    return true;
  }

  /** Handles Engine.IO / Socket.IO control packets; true when the frame was one. */
  private socketIoControl(data: Buffer, start: number, end: number): boolean {
    const t = data[start];
    if (t === SIO_PING && end - start === 1) {
      this.sendText('3');
      return true;
    }
    if (t === SIO_OPEN) {
      this.sendText('40');
      return true;
    }
    if (t === SIO_MESSAGE && data[start + 1] === SIO_CONNECT) {
      if (!this.ready) this.becomeReady();
      return true;
    }
    return false;
  }
}
