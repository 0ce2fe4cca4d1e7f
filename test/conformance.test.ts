import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type ChildGateway, spawnGateway } from './helpers/gateway';
import { type Frame, type FrameSpec, Op, RawWs, acceptFor, closePayload, encodeFrame as encode, rawRequest } from './helpers/ws-raw';

/**
 * RFC 6455 conformance of what a client can reach, over a raw TCP socket (no WebSocket library on the
 * client side), in the spirit of Autobahn|Testsuite cases 1-7 and 9. Each case names its RFC section and
 * asserts the exact observable result. Where uWebSockets.js departs from the RFC the test pins today's
 * behaviour and says so; docs/protocol.md ("Conformance") lists those departures.
 */

const PING_CMD = Buffer.from('{"op":"ping","id":1}');
const OK_REPLY = '{"op":"ok","id":1}';
const MAX_PAYLOAD = 65536; // the default --max-payload

let g: ChildGateway;
before(async () => {
  g = await spawnGateway([]);
});
after(async () => {
  await g.stop();
});

async function open(): Promise<RawWs> {
  return RawWs.connect(g.port, { protocol: 'wsgate.json' });
}

/** Sends `specs` on a fresh connection and returns the next frame the server sends. */
async function firstAnswer(specs: readonly FrameSpec[]): Promise<Frame> {
  const ws = await open();
  for (const s of specs) ws.send(s);
  const f = await ws.next();
  ws.destroy();
  return f;
}

/** Sends `specs` on a fresh connection and reports how the server ended it. */
async function ending(specs: readonly FrameSpec[]) {
  const ws = await open();
  for (const s of specs) ws.send(s);
  const end = await ws.ending();
  const data = ws.frames.filter((f) => f.opcode !== Op.Close);
  return { ...end, data };
}

/** Every frame a server sends is unmasked (§5.1) and has no reserved bit set (§5.2). */
function assertServerFrame(f: Frame): void {
  assert.equal(f.masked, false, 'server frames are never masked (§5.1)');
  assert.equal(f.rsv, 0, 'no reserved bits without an extension (§5.2)');
}

const pad = (n: number): Buffer => Buffer.concat([PING_CMD, Buffer.alloc(n - PING_CMD.length, 0x20)]);
const text = (f: Frame) => f.payload.toString('utf8');

describe('RFC 6455 §4 opening handshake', () => {
  it('§4.2.2: Sec-WebSocket-Accept is SHA-1(key + GUID), base64 (the RFC\'s own example key)', async () => {
    const key = 'dGhlIHNhbXBsZSBub25jZQ==';
    const { socket, head } = await rawRequest(g.port, `GET /ws HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: ${key}\r\nsec-websocket-version: 13\r\n\r\n`, 3000);
    socket.destroy();
    assert.equal(head.status, 101);
    assert.equal(head.headers['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    assert.equal(acceptFor(key), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    assert.equal(head.headers.upgrade?.toLowerCase(), 'websocket');
  });

  it('§4.2.2: the subprotocol offered is selected and echoed', async () => {
    const { socket, head } = await rawRequest(g.port, 'GET /ws HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\nsec-websocket-protocol: chat, wsgate.msgpack\r\n\r\n', 3000);
    socket.destroy();
    assert.equal(head.status, 101);
    assert.equal(head.headers['sec-websocket-protocol'], 'wsgate.msgpack');
  });

  it('§4.4: an unsupported Sec-WebSocket-Version is refused (wsgate: 400 bad_request)', async () => {
    const { head } = await rawRequest(g.port, 'GET /ws HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 8\r\n\r\n', 3000);
    assert.equal(head.status, 400);
  });
});

describe('RFC 6455 §5 framing (Autobahn 1, 4, 9: data frames and sizes)', () => {
  for (const n of [0, 125, 126, 65535, 65536]) {
    it(`§5.2: a ${n}-byte text message (${n < 126 ? '7-bit' : n < 65536 ? '16-bit' : '64-bit'} length) is read whole`, async () => {
      if (n === 0) {
        // An empty message is a valid frame; as a command it is not valid JSON.
        const f = await firstAnswer([{ opcode: Op.Text }]);
        assert.deepEqual(JSON.parse(text(f)), { op: 'err', code: 'bad_frame', reason: 'frame is not valid json' });
        return;
      }
      const f = await firstAnswer([{ opcode: Op.Text, payload: pad(n) }]);
      assertServerFrame(f);
      assert.equal(f.opcode, Op.Text);
      assert.equal(text(f), OK_REPLY);
    });
  }

  it(`§5.2/§7.4.1: one byte over --max-payload (${MAX_PAYLOAD + 1}) is closed with 1009 (wsgate's check)`, async () => {
    const end = await ending([{ opcode: Op.Text, payload: pad(MAX_PAYLOAD + 1) }]);
    assert.deepEqual(end.closeFrame, { code: 1009, reason: 'message too big' });
  });

  it('§5.2: over 4 × --max-payload the transport cuts the connection with no close frame (uWS; clients see 1006)', async () => {
    const end = await ending([{ opcode: Op.Text, payload: pad(4 * MAX_PAYLOAD + 1) }]);
    assert.equal(end.closeFrame, null);
    assert.equal(end.tcpClosed, true);
  });

  it('§5.2: a length in a longer form than needed (16- and 64-bit for 20 bytes) is accepted (uWS does not insist on the minimal form)', async () => {
    for (const form of [16, 64] as const) assert.equal(text(await firstAnswer([{ opcode: Op.Text, payload: PING_CMD, lengthForm: form }])), OK_REPLY);
  });

  it('§5.6: a binary frame on a JSON connection is a wsgate protocol error (err bad_frame), not a WebSocket one', async () => {
    const f = await firstAnswer([{ opcode: Op.Binary, payload: PING_CMD }]);
    assert.equal((JSON.parse(text(f)) as { code: string }).code, 'bad_frame');
  });
});

describe('RFC 6455 §5.4 fragmentation (Autobahn 5)', () => {
  it('§5.4: a command in three fragments (text, continuation, final continuation) is one message', async () => {
    const f = await firstAnswer([
      { opcode: Op.Text, fin: false, payload: PING_CMD.subarray(0, 5) },
      { opcode: Op.Cont, fin: false, payload: PING_CMD.subarray(5, 12) },
      { opcode: Op.Cont, payload: PING_CMD.subarray(12) },
    ]);
    assert.equal(text(f), OK_REPLY);
  });

  it('§5.4: a command in one-byte fragments (20 frames) is one message', async () => {
    const specs: FrameSpec[] = [...PING_CMD].map((b, i) => ({ opcode: i === 0 ? Op.Text : Op.Cont, fin: i === PING_CMD.length - 1, payload: Buffer.from([b]) }));
    assert.equal(text(await firstAnswer(specs)), OK_REPLY);
  });

  it('§5.4/§5.5.2: a ping between fragments is answered at once with its pong, then the message completes', async () => {
    const ws = await open();
    ws.send({ opcode: Op.Text, fin: false, payload: PING_CMD.subarray(0, 8) });
    ws.send({ opcode: Op.Ping, payload: Buffer.from('between') });
    ws.send({ opcode: Op.Cont, payload: PING_CMD.subarray(8) });
    const pong = await ws.next();
    assertServerFrame(pong);
    assert.equal(pong.opcode, Op.Pong);
    assert.equal(pong.payload.toString(), 'between');
    assert.equal(text(await ws.next()), OK_REPLY);
    ws.destroy();
  });

  it('§5.4/§5.5.3: a pong between fragments is ignored and the message completes', async () => {
    const f = await firstAnswer([
      { opcode: Op.Text, fin: false, payload: PING_CMD.subarray(0, 8) },
      { opcode: Op.Pong, payload: Buffer.from('x') },
      { opcode: Op.Cont, payload: PING_CMD.subarray(8) },
    ]);
    assert.equal(text(f), OK_REPLY);
  });

  const cuts: [string, FrameSpec[]][] = [
    ['a continuation with no message started', [{ opcode: Op.Cont, payload: PING_CMD }]],
    ['a new text frame while a fragmented message is open', [{ opcode: Op.Text, fin: false, payload: PING_CMD.subarray(0, 5) }, { opcode: Op.Text, payload: PING_CMD }]],
    ['a fragmented ping (control frames must not be fragmented, §5.5)', [{ opcode: Op.Ping, fin: false, payload: Buffer.from('x') }]],
  ];
  for (const [what, specs] of cuts) {
    it(`§5.4/§7.1.7: ${what} fails the connection: TCP closed, no close frame (allowed: "MAY send a Close frame")`, async () => {
      const end = await ending(specs);
      assert.deepEqual({ closeFrame: end.closeFrame, tcpClosed: end.tcpClosed, data: end.data.length }, { closeFrame: null, tcpClosed: true, data: 0 });
    });
  }
});

describe('RFC 6455 §5.5 control frames (Autobahn 2 and 3)', () => {
  for (const n of [0, 1, 125]) {
    it(`§5.5.2/§5.5.3: a ping with ${n} payload bytes gets a pong with the same payload`, async () => {
      const payload = Buffer.alloc(n, 0xfe); // not UTF-8: control payloads are opaque bytes
      const f = await firstAnswer([{ opcode: Op.Ping, payload }]);
      assertServerFrame(f);
      assert.equal(f.opcode, Op.Pong);
      assert.ok(f.payload.equals(payload));
    });
  }

  it('§5.5.3: an unsolicited pong is ignored (no answer; the connection serves the next command)', async () => {
    const f = await firstAnswer([{ opcode: Op.Pong, payload: Buffer.from('unsolicited') }, { opcode: Op.Text, payload: PING_CMD }]);
    assert.equal(text(f), OK_REPLY);
  });

  for (const opcode of [Op.Ping, Op.Pong, Op.Close]) {
    it(`§5.5: a control frame (opcode ${opcode}) with 126 payload bytes fails the connection: cut, no close frame`, async () => {
      const payload = opcode === Op.Close ? Buffer.concat([closePayload(1000), Buffer.alloc(124, 0x61)]) : Buffer.alloc(126, 0x61);
      const end = await ending([{ opcode, payload }]);
      assert.equal(end.closeFrame, null);
      assert.equal(end.tcpClosed, true);
    });
  }
});

describe('RFC 6455 §5.1-§5.2 reserved bits, opcodes, masking (Autobahn 3 and 4)', () => {
  for (const rsv of [1, 2, 4, 7]) {
    it(`§5.2: reserved bits ${rsv.toString(2).padStart(3, '0')} (no extension negotiated) fail the connection: cut, no close frame`, async () => {
      const end = await ending([{ opcode: Op.Text, rsv, payload: PING_CMD }]);
      assert.deepEqual({ closeFrame: end.closeFrame, tcpClosed: end.tcpClosed, data: end.data.length }, { closeFrame: null, tcpClosed: true, data: 0 });
    });
  }

  for (const opcode of [3, 4, 5, 6, 7, 11, 12, 13, 14, 15]) {
    it(`§5.2: reserved opcode ${opcode} fails the connection: cut, no close frame`, async () => {
      const end = await ending([{ opcode, payload: Buffer.from('x') }]);
      assert.deepEqual({ closeFrame: end.closeFrame, tcpClosed: end.tcpClosed }, { closeFrame: null, tcpClosed: true });
    });
  }

  it('§5.1 (uWS departs): an unmasked client frame is not refused; uWS reads it as masked, taking its first 4 payload bytes as the key', async () => {
    // The RFC says the server MUST close on an unmasked client frame. uWS ignores the mask bit: this frame
    // declares 4 + 20 bytes, uWS takes the 4 zero bytes as the masking key and reads 24 payload bytes,
    // i.e. the command plus the 4 spaces sent after the frame, XOR 0: a valid ping command.
    const ws = await open();
    const payload = Buffer.concat([Buffer.alloc(4), PING_CMD]);
    ws.send({ opcode: Op.Text, mask: null, payload });
    ws.sendBytes(Buffer.from('    '));
    assert.equal(text(await ws.next()), OK_REPLY);
    ws.destroy();
  });
});

describe('RFC 6455 §5.6/§8.1 UTF-8 in text frames (Autobahn 6)', () => {
  const invalid: [string, FrameSpec[]][] = [
    ['a lone 0xFF byte', [{ opcode: Op.Text, payload: Buffer.from([0x22, 0xff, 0x22]) }]],
    ['an encoded surrogate (ED A0 80)', [{ opcode: Op.Text, payload: Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22]) }]],
    ['an overlong encoding (C0 AF)', [{ opcode: Op.Text, payload: Buffer.from([0x22, 0xc0, 0xaf, 0x22]) }]],
    ['a sequence cut by the end of the message, across fragments', [{ opcode: Op.Text, fin: false, payload: Buffer.from([0x22, 0xce]) }, { opcode: Op.Cont, payload: Buffer.from([0x22]) }]],
  ];
  for (const [what, specs] of invalid) {
    it(`§8.1 (uWS departs): ${what} is cut without a close frame, where the RFC asks for close 1007`, async () => {
      const end = await ending(specs);
      assert.deepEqual({ closeFrame: end.closeFrame, tcpClosed: end.tcpClosed, data: end.data.length }, { closeFrame: null, tcpClosed: true, data: 0 });
    });
  }

  it('§5.6: valid multi-byte UTF-8 split inside a character across fragments is accepted', async () => {
    const cmd = Buffer.from('{"op":"ping","id":1,"x":"κόσμε"}');
    const cut = cmd.indexOf(0xce) + 1; // inside the two-byte κ
    const f = await firstAnswer([{ opcode: Op.Text, fin: false, payload: cmd.subarray(0, cut) }, { opcode: Op.Cont, payload: cmd.subarray(cut) }]);
    assert.equal(text(f), OK_REPLY);
  });
});

describe('RFC 6455 §5.5.1/§7 closing handshake (Autobahn 7)', () => {
  for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 4000, 4999]) {
    it(`§5.5.1/§7.4.1: close ${code} is answered with close ${code} (echoed, with the reason), then TCP closes`, async () => {
      const end = await ending([{ opcode: Op.Close, payload: closePayload(code, 'bye') }]);
      assert.deepEqual(end.closeFrame, { code, reason: 'bye' });
      assert.equal(end.tcpClosed, true);
    });
  }

  it('§5.5.1: a close with no payload is answered with a close with no payload', async () => {
    const end = await ending([{ opcode: Op.Close }]);
    assert.deepEqual(end.closeFrame, { code: null, reason: '' });
  });

  // The RFC has the endpoint fail the connection on these (Autobahn expects 1002): uWS answers with an
  // empty close frame instead. 3000-3999 (registered codes) and 1012-1014 are valid today but uWS 20.57
  // treats them like invalid ones.
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535, 3000, 3999, 1012, 1013, 1014]) {
    it(`§7.4 (uWS departs): close ${code} is answered with an empty close frame (no 1002), then TCP closes`, async () => {
      const end = await ending([{ opcode: Op.Close, payload: closePayload(code, 'bye') }]);
      assert.deepEqual(end.closeFrame, { code: null, reason: '' });
      assert.equal(end.tcpClosed, true);
    });
  }

  it('§5.5.1 (uWS departs): a 1-byte close payload is answered with an empty close frame (no 1002)', async () => {
    const end = await ending([{ opcode: Op.Close, payload: Buffer.from([0x03]) }]);
    assert.deepEqual(end.closeFrame, { code: null, reason: '' });
  });

  it('§5.5.1/§8.1 (uWS departs): a close reason that is not UTF-8 is answered with an empty close frame (no 1007)', async () => {
    const end = await ending([{ opcode: Op.Close, payload: Buffer.concat([closePayload(1000), Buffer.from([0xff, 0xfe])]) }]);
    assert.deepEqual(end.closeFrame, { code: null, reason: '' });
  });

  it('§5.5.1: nothing after the client\'s close is processed (a command sent after it gets no answer)', async () => {
    const ws = await open();
    ws.sendBytes(Buffer.concat([encode({ opcode: Op.Close, payload: closePayload(1000) }), encode({ opcode: Op.Text, payload: PING_CMD })]));
    const end = await ws.ending();
    assert.equal(end.closeFrame?.code, 1000);
    assert.equal(ws.frames.filter((f) => f.opcode === Op.Text).length, 0);
  });
});
