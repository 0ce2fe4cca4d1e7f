import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { RawClient, sleep, startGateway, SINGLE_THREAD_ONLY } from './helpers/gateway';
import { APP } from './helpers/pusher-clients';

/** Reads whole HTTP/1.1 responses (headers and a Content-Length body) off a raw keep-alive socket. */
function responses(sock: Socket): () => Promise<{ head: string; body: string }> {
  let buffered = Buffer.alloc(0);
  let wake: (() => void) | null = null;
  sock.on('data', (d: Buffer) => {
    buffered = Buffer.concat([buffered, d]);
    wake?.();
  });
  sock.on('close', () => wake?.());
  return async () => {
    for (;;) {
      const end = buffered.indexOf('\r\n\r\n');
      if (end >= 0) {
        const head = buffered.subarray(0, end).toString();
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buffered.length >= end + 4 + length) {
          const body = buffered.subarray(end + 4, end + 4 + length).toString();
          buffered = buffered.subarray(end + 4 + length);
          return { head, body };
        }
      }
      if (sock.destroyed) throw new Error(`connection closed before a whole response: ${buffered.toString()}`);
      await new Promise<void>((resolve) => (wake = resolve));
    }
  };
}

const UPGRADE_HEADERS = 'Host: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';

/**
 * A drain closes the listen socket first, so new connections are refused by the kernel; but a client on a
 * keep-alive HTTP connection opened before (as a proxy holds them) can still ask for an upgrade on it. Both
 * front doors answer it with 503, so clients go to another node instead of reconnecting into this one.
 */
describe('a draining node refuses an upgrade on a keep-alive connection opened before the drain', () => {
  for (const [door, path] of [
    ['wsgate /ws', '/ws?topics=x'],
    ['Pusher /app/<key>', `/app/${APP.key}?protocol=7&client=js&version=8.4.0`],
  ] as const) {
    it(`${door}: HTTP 503 draining`, { skip: SINGLE_THREAD_ONLY }, async () => {
      const g = await startGateway(['--pusher-apps', `${APP.appId}:${APP.key}:${APP.secret}`, '--drain-window', '3000']);
      // Two connections keep the drain going for the window (the first is closed at its start).
      const held = await Promise.all([RawClient.open(g.ws), RawClient.open(g.ws)]);
      const sock = connect(g.port, '127.0.0.1');
      const next = responses(sock);
      try {
        sock.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n');
        assert.match((await next()).head, /^HTTP\/1\.1 200/);
        // The same request before the drain is a working upgrade (the 503 below is the drain's).
        const before = connect(g.port, '127.0.0.1');
        before.write(`GET ${path} HTTP/1.1\r\n${UPGRADE_HEADERS}`);
        assert.match((await responses(before)()).head, /^HTTP\/1\.1 101/);
        before.destroy();
        const draining = g.gw.drain();
        await sleep(100);
        await assert.rejects(new Promise((resolve, reject) => connect(g.port, '127.0.0.1').once('connect', resolve).once('error', reject)), 'new connections refused');
        sock.write(`GET ${path} HTTP/1.1\r\n${UPGRADE_HEADERS}`);
        const refused = await next();
        assert.match(refused.head, /^HTTP\/1\.1 503/);
        assert.equal((JSON.parse(refused.body) as { code: string }).code, 'draining');
        assert.ok(held.some((c) => c.closeCode === null), 'still inside the drain window');
        await draining;
      } finally {
        sock.destroy();
        await g.stop();
      }
    });
  }
});
