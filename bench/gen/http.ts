import * as net from 'node:net';
import { writePayload, nowUs } from '../lib/stamp';

export interface HttpPostEvents {
  /** One response completed; `sentUs` is when its request was written. */
  onResponse(status: number, sentUs: number): void;
  onError(reason: string): void;
}

/**
 * A closed-loop HTTP/1.1 keep-alive client for `POST /publish`: one request in flight per
 * connection, the next one sent as soon as the previous response is complete.
 */
export class HttpPoster {
  private readonly socket: net.Socket;
  private head = '';
  private bodyLeft = -1;
  private status = 0;
  private sentUs = 0;
  private seq = 0;
  private running = false;
  private readonly prefix: string;
  private readonly suffix: string;

  constructor(
    host: string,
    port: number,
    path: string,
    localAddress: string,
    private readonly pid: number,
    topic: string,
    private readonly payloadBytes: number,
    private readonly events: HttpPostEvents,
  ) {
    const bodyLen = `{"topic":"${topic}","data":""}`.length + payloadBytes;
    this.prefix =
      `POST ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${bodyLen}\r\n\r\n{"topic":"${topic}","data":"`;
    this.suffix = '"}';
    this.socket = net.connect({ host, port, localAddress, noDelay: true });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (err: Error) => this.events.onError(err.message));
  }

  /** Sends requests back to back until `stop()`. */
  start(): void {
    this.running = true;
    if (this.socket.connecting) this.socket.once('connect', () => this.send());
    else this.send();
  }

  stop(): void {
    this.running = false;
  }

  close(): void {
    this.socket.destroy();
  }

  private send(): void {
    const p = Buffer.byteLength(this.prefix);
    const req = Buffer.allocUnsafe(p + this.payloadBytes + this.suffix.length);
    req.write(this.prefix, 0, 'latin1');
    this.sentUs = nowUs();
    writePayload(req, p, this.payloadBytes, this.pid, ++this.seq, this.sentUs);
    req.write(this.suffix, p + this.payloadBytes, 'latin1');
    this.socket.write(req);
  }

  private onData(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.bodyLeft < 0) {
        this.head += chunk.toString('latin1', i);
        const stop = this.head.indexOf('\r\n\r\n');
        if (stop < 0) return;
        i = chunk.length - (this.head.length - stop - 4);
        const head = this.head.slice(0, stop);
        this.head = '';
        this.status = Number(head.slice(9, 12));
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        this.bodyLeft = m ? Number(m[1]) : 0;
      }
      const take = Math.min(this.bodyLeft, chunk.length - i);
      i += take;
      this.bodyLeft -= take;
      if (this.bodyLeft === 0) {
        this.bodyLeft = -1;
        this.events.onResponse(this.status, this.sentUs);
        if (this.running) this.send();
      }
    }
  }
}
