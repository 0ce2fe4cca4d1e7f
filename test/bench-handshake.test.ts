import { after, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { HandshakeReader, acceptFor, upgradeRequest } from '../bench/lib/handshake';
import { WsClient } from '../bench/gen/client';
import { dialect } from '../bench/lib/dialect';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

function response(accept: string, status = '101 Switching Protocols'): string {
  return `HTTP/1.1 ${status}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`;
}

describe('bench handshake', () => {
  it('computes the RFC 6455 example accept value', () => {
    assert.equal(acceptFor(KEY), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  });

  it('builds a version-13 upgrade request', () => {
    const r = upgradeRequest('127.0.0.1', 9, '/ws?topics=a,b', KEY);
    assert.match(r, /^GET \/ws\?topics=a,b HTTP\/1\.1\r\n/);
    assert.match(r, /\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n/);
    assert.match(r, /\r\nSec-WebSocket-Version: 13\r\n\r\n$/);
  });

  it('accepts a valid response split at every byte boundary and finds the first frame byte', () => {
    const bytes = Buffer.concat([Buffer.from(response(acceptFor(KEY))), Buffer.from([0x81, 0x01, 0x61])]);
    const headerEnd = bytes.length - 3;
    for (let cut = 1; cut < bytes.length; cut++) {
      const h = new HandshakeReader(KEY);
      const first = h.feed(bytes, 0, cut);
      const r = first.kind === 'incomplete' ? h.feed(bytes, cut, bytes.length) : first;
      assert.deepEqual(r, { kind: 'ok', bodyStart: headerEnd }, `cut ${cut}`);
    }
  });

  it('rejects a wrong accept value, a refused upgrade and a missing Upgrade header', () => {
    const wrong = new HandshakeReader(KEY).feed(Buffer.from(response('AAAA')), 0, response('AAAA').length);
    assert.equal(wrong.kind, 'error');
    const refused = Buffer.from('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\n{}');
    const r = new HandshakeReader(KEY).feed(refused, 0, refused.length);
    assert.ok(r.kind === 'error' && r.reason.includes('503'));
    const noUpgrade = Buffer.from(`HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: ${acceptFor(KEY)}\r\n\r\n`);
    assert.equal(new HandshakeReader(KEY).feed(noUpgrade, 0, noUpgrade.length).kind, 'error');
  });
});

describe('bench client against a real server (ws package, 127.0.0.1)', () => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  after(() => new Promise<void>((resolve) => wss.close(() => resolve())));

  it('answers ping with pong, receives data, sends masked frames, and closes on a close frame', async () => {
    const port = (wss.address() as AddressInfo).port;
    const serverSide = new Promise<{ pong: Buffer; text: string; closeCode: number }>((resolve) => {
      wss.once('connection', (sock, req) => {
        assert.equal(req.url, '/ws?topics=t0');
        let pong: Buffer = Buffer.alloc(0);
        let text = '';
        sock.on('pong', (d) => {
          pong = d;
          sock.send('{"t":"t0","s":1,"d":"x"}');
        });
        sock.on('message', (d) => {
          text = d.toString();
          sock.close(4000, 'bye');
        });
        sock.on('close', (code) => resolve({ pong, text, closeCode: code }));
        sock.ping(Buffer.from('are you there'));
      });
    });
    const got: string[] = [];
    let endError = '';
    const ended = new Promise<void>((resolve) => {
      const c = new WsClient(0, { host: '127.0.0.1', port, dialect: dialect('plain') }, ['t0'], '127.0.0.2', Buffer.alloc(4096), {
        onChunk() {},
        onChunkDone() {},
        onReady() {},
        onData(client, data, start, end) {
          got.push(data.toString('utf8', start, end));
          client.sendText('{"op":"pub","topic":"t0","data":1}');
        },
        onEnd(_client, error) {
          endError = error;
          resolve();
        },
      });
      assert.equal(c.ready, false);
    });
    const s = await serverSide;
    await ended;
    assert.equal(s.pong.toString(), 'are you there');
    assert.deepEqual(got, ['{"t":"t0","s":1,"d":"x"}']);
    assert.equal(s.text, '{"op":"pub","topic":"t0","data":1}');
    assert.equal(s.closeCode, 4000);
    assert.equal(endError, 'server closed with 4000');
  });
});
