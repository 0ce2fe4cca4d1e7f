/**
 * Subscribers for the in-process publish-cost benchmark (micro/publish-cost.ts), in their own process:
 * `count` raw WebSocket connections to `/ws?topics=<topic>` that read and discard, counting bytes.
 * Protocol over IPC: parent sends {port, count, topic}; child answers {ready}; on {bytes} it answers
 * {bytes: n}; on {stop} it closes everything and exits.
 */
import * as net from 'node:net';
import { HandshakeReader, newKey, upgradeRequest } from '../lib/handshake';

interface Start {
  port: number;
  count: number;
  topic: string;
}

let received = 0;
const sockets: net.Socket[] = [];

function open(port: number, topic: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const key = newKey();
    const reader = new HandshakeReader(key);
    let upgraded = false;
    const s = net.connect({ host: '127.0.0.1', port }, () => s.write(upgradeRequest('127.0.0.1', port, `/ws?topics=${topic}`, key)));
    sockets.push(s);
    s.on('data', (chunk: Buffer) => {
      if (upgraded) {
        received += chunk.length;
        return;
      }
      const r = reader.feed(chunk, 0, chunk.length);
      if (r.kind === 'error') reject(new Error(r.reason));
      if (r.kind === 'ok') {
        upgraded = true;
        received += chunk.length - r.bodyStart;
        resolve();
      }
    });
    s.on('error', reject);
  });
}

process.on('message', (msg: Start | { cmd: 'bytes' } | { cmd: 'stop' }) => {
  if ('port' in msg) {
    void (async () => {
      for (let i = 0; i < msg.count; i += 50) await Promise.all(Array.from({ length: Math.min(50, msg.count - i) }, () => open(msg.port, msg.topic)));
      process.send?.({ ready: true });
    })().catch((e: Error) => {
      process.send?.({ error: e.message });
    });
  } else if (msg.cmd === 'bytes') process.send?.({ bytes: received });
  else {
    for (const s of sockets) s.destroy();
    process.exit(0);
  }
});
