import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type TestGateway, startGateway } from './helpers/gateway';

/** Sends raw HTTP bytes and returns the response head (up to the blank line). */
function rawRequest(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1', () => sock.write(request));
    let data = '';
    sock.on('data', (d) => {
      data += d.toString('latin1');
      if (data.includes('\r\n\r\n')) {
        sock.destroy();
        resolve(data);
      }
    });
    sock.on('error', reject);
    sock.setTimeout(3000, () => reject(new Error(`no response; got: ${data}`)));
  });
}

const upgrade = (key: string, extra = '') =>
  `GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;

const header = (head: string, name: string) => head.split('\r\n').find((l) => l.toLowerCase().startsWith(name.toLowerCase() + ':'))?.slice(name.length + 1).trim();

describe('WebSocket handshake (RFC 6455) over raw TCP', () => {
  let g: TestGateway;
  before(async () => (g = await startGateway()));
  after(() => g.stop());

  for (const [key, accept] of [
    ['dGhlIHNhbXBsZSBub25jZQ==', 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='],
    ['x3JJHMbDL1EzLkh9GBhXDw==', 'HSmrc0sMlYUkAGmm5OPpG2HaGWk='],
  ]) {
    it(`answers key ${key} with accept ${accept}`, async () => {
      const head = await rawRequest(g.port, upgrade(key as string));
      assert.match(head, /^HTTP\/1\.1 101 /);
      assert.equal(header(head, 'Sec-WebSocket-Accept'), accept);
      assert.equal(header(head, 'Sec-WebSocket-Protocol'), undefined, 'no subprotocol offered: none selected (JSON)');
    });
  }

  it('selects the offered codec subprotocol, first supported wins', async () => {
    const head = await rawRequest(g.port, upgrade('dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Protocol: chat, wsgate.msgpack, wsgate.json\r\n'));
    assert.match(head, /^HTTP\/1\.1 101 /);
    assert.equal(header(head, 'Sec-WebSocket-Protocol'), 'wsgate.msgpack');
  });

  it('refuses only-unsupported subprotocols with 400 unsupported_subprotocol', async () => {
    const head = await rawRequest(g.port, upgrade('dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Protocol: mqtt\r\n'));
    assert.match(head, /^HTTP\/1\.1 400 /);
  });

  it('rejects a plain GET on /ws with 426', async () => {
    const head = await rawRequest(g.port, 'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    assert.match(head, /^HTTP\/1\.1 426 /);
    assert.equal(header(head, 'sec-websocket-version'), '13');
  });

  it('rejects an upgrade with a malformed key (426, not an upgrade) or a wrong version (400)', async () => {
    assert.match(await rawRequest(g.port, upgrade('short')), /^HTTP\/1\.1 426 /);
    const v8 = upgrade('dGhlIHNhbXBsZSBub25jZQ==').replace('Version: 13', 'Version: 8');
    assert.match(await rawRequest(g.port, v8), /^HTTP\/1\.1 400 /);
  });

  it('counts refused upgrades by result', async () => {
    const text = await (await fetch(`${g.http}/metrics`)).text();
    const bad = Number(/wsgate_connections_total\{result="bad_request"\} (\d+)/.exec(text)?.[1]);
    assert.ok(bad >= 3, `bad_request upgrades counted: ${bad}`);
  });
});
