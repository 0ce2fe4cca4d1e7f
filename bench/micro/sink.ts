/**
 * Subscribers for the in-process publish-cost benchmarks (micro/publish-cost.ts, micro/delta-cost.ts), in
 * their own process: `count` raw WebSocket connections to `/ws?topics=<topic>` (or, with `delta`, a `sub`
 * asking for fossil deltas) that read and discard, counting bytes.
 * Protocol over IPC: parent sends {port, count, topic, delta?}; child answers {ready}; on {bytes} it answers
 * {bytes: n}; on {stop} it closes everything and exits.
 */
import * as net from 'node:net';
import { randomBytes } from 'node:crypto';
import { OP_TEXT, encodeClientFrame } from '../lib/frame';
import { HandshakeReader, newKey, upgradeRequest } from '../lib/handshake';

interface Start {
  port: number;
  count: number;
  topic: string;
  delta?: boolean;
}

let received = 0;
const sockets: net.Socket[] = [];

function open(port: number, topic: string, delta: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const key = newKey();
    const reader = new HandshakeReader(key);
    let upgraded = false;
    const s = net.connect({ host: '127.0.0.1', port }, () => s.write(upgradeRequest('127.0.0.1', port, delta ? '/ws' : `/ws?topics=${topic}`, key)));
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
        if (delta) s.write(encodeClientFrame(OP_TEXT, Buffer.from(JSON.stringify({ op: 'sub', topic, delta: 'fossil' })), randomBytes(4)));
        else received += chunk.length - r.bodyStart;
        resolve();
      }
    });
    s.on('error', reject);
  });
}

process.on('message', (msg: Start | { cmd: 'bytes' } | { cmd: 'stop' }) => {
  if ('port' in msg) {
    void (async () => {
      for (let i = 0; i < msg.count; i += 50) await Promise.all(Array.from({ length: Math.min(50, msg.count - i) }, () => open(msg.port, msg.topic, msg.delta === true)));
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
