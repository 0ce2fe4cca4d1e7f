import { createHash, randomBytes } from 'node:crypto';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export function newKey(): string {
  return randomBytes(16).toString('base64');
}

/** The Sec-WebSocket-Accept value a server must answer for `key` (RFC 6455 §4.2.2). */
export function acceptFor(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

export function upgradeRequest(host: string, port: number, pathAndQuery: string, key: string): string {
  return (
    `GET ${pathAndQuery} HTTP/1.1\r\n` +
    `Host: ${host}:${port}\r\n` +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    `Sec-WebSocket-Key: ${key}\r\n` +
    'Sec-WebSocket-Version: 13\r\n\r\n'
  );
}

export type HandshakeResult =
  | { kind: 'incomplete' }
  | { kind: 'ok'; bodyStart: number }
  | { kind: 'error'; reason: string };

const INCOMPLETE: HandshakeResult = { kind: 'incomplete' };
const MAX_HEADER = 8192;

/**
 * Accumulates the server's HTTP response to the upgrade until the blank line, then validates it.
 * Bytes after the header (frames the server sent right away) start at `bodyStart` in the last chunk.
 */
export class HandshakeReader {
  private head = '';

  constructor(private readonly key: string) {}

  feed(chunk: Buffer, start: number, end: number): HandshakeResult {
    const before = this.head.length;
    this.head += chunk.toString('latin1', start, end);
    const stop = this.head.indexOf('\r\n\r\n');
    if (stop < 0) {
      return this.head.length > MAX_HEADER ? { kind: 'error', reason: 'response header too long' } : INCOMPLETE;
    }
    const bodyStart = start + (stop + 4 - before);
    const lines = this.head.slice(0, stop).split('\r\n');
    const status = /^HTTP\/1\.1 (\d{3})/.exec(lines[0]);
    if (!status) return { kind: 'error', reason: `bad status line: ${lines[0]}` };
    if (status[1] !== '101') {
      return { kind: 'error', reason: `upgrade refused: ${lines[0]} ${this.head.slice(stop + 4, stop + 200)}` };
    }
    let accept = '';
    let upgrade = '';
    for (let i = 1; i < lines.length; i++) {
      const colon = lines[i].indexOf(':');
      const name = lines[i].slice(0, colon).trim().toLowerCase();
      const value = lines[i].slice(colon + 1).trim();
      if (name === 'sec-websocket-accept') accept = value;
      else if (name === 'upgrade') upgrade = value.toLowerCase();
    }
    if (upgrade !== 'websocket') return { kind: 'error', reason: 'missing Upgrade: websocket' };
    if (accept !== acceptFor(this.key)) return { kind: 'error', reason: 'Sec-WebSocket-Accept mismatch' };
    return { kind: 'ok', bodyStart };
  }
}
