/**
 * Generator self-test server: accepts WebSocket upgrades and, once `--conns` connections are up
 * (so that blasting does not starve the handshakes), writes the same pre-framed 64 KiB block of
 * wsgate-style deliveries to every connection as fast as the socket takes it. It does no
 * per-message work, so what the generator receives from it is the generator's receive capacity.
 *   node dist/bench/baselines/blaster.js --port 9009 --payload 64 --conns 1000
 */
import * as net from 'node:net';
import { acceptFor } from '../lib/handshake';
import { argNumber, argValue } from '../lib/cli';
import { nowUs, writePayload, writeStamp } from '../lib/stamp';

const host = argValue(process.argv, 'host') ?? '127.0.0.1';
const port = argNumber(process.argv, 'port', 9009);
const payloadBytes = argNumber(process.argv, 'payload', 64);
const conns = argNumber(process.argv, 'conns', 1);
const upgraded: net.Socket[] = [];

/** Unmasked server text frames `{"t":"t0","s":N,"d":"<stamped payload>"}` packed into ~64 KiB. */
function preframed(): { block: Buffer; stamps: number[] } {
  const frames: Buffer[] = [];
  const stamps: number[] = [];
  let size = 0;
  for (let s = 1; size < 64 * 1024; s++) {
    const body = Buffer.from(`{"t":"t0","s":${s},"d":"${'x'.repeat(payloadBytes)}"}`);
    const at = body.indexOf('"d":"') + 5;
    writePayload(body, at, payloadBytes, 0, s, 0);
    const head = body.length < 126 ? Buffer.from([0x81, body.length]) : Buffer.from([0x81, 126, body.length >> 8, body.length & 0xff]);
    frames.push(head, body);
    stamps.push(size + head.length + at);
    size += head.length + body.length;
  }
  return { block: Buffer.concat(frames), stamps };
}

const { block, stamps } = preframed();
// Refresh the send times every few ms so the generator records realistic latencies (its fast path).
setInterval(() => {
  const now = nowUs();
  stamps.forEach((at, i) => writeStamp(block, at, 0, i + 1, now));
}, 5);

function blast(socket: net.Socket): void {
  while (!socket.destroyed && socket.write(block));
}

net
  .createServer((socket) => {
    let head = '';
    const onData = (chunk: Buffer): void => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      const key = /sec-websocket-key:\s*(\S+)/i.exec(head)?.[1] ?? '';
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\n\r\n`);
      socket.on('drain', () => blast(socket));
      socket.on('data', () => undefined);
      upgraded.push(socket);
      if (upgraded.length === conns) for (const s of upgraded) blast(s);
      else if (upgraded.length > conns) blast(socket);
    };
    socket.on('data', onData);
    socket.on('error', () => socket.destroy());
  })
  .listen(port, host);
process.on('SIGTERM', () => process.exit(0));
