import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  FrameScanner,
  FrameSink,
  OP_BINARY,
  OP_CLOSE,
  OP_PING,
  OP_PONG,
  OP_TEXT,
  encodeClientFrame,
  maskPayload,
} from '../bench/lib/frame';
import { STAMP_LEN, Stamp, writePayload } from '../bench/lib/stamp';

interface Seen {
  opcode: number;
  fin: boolean;
  data: Buffer;
  length: number;
}

/** A sink that copies what it is given (the scanner's views are only valid during the call). */
function collector(): { sink: FrameSink; frames: Seen[]; errors: string[] } {
  const frames: Seen[] = [];
  const errors: string[] = [];
  return {
    frames,
    errors,
    sink: {
      onFrame(opcode, fin, data, start, end, length) {
        frames.push({ opcode, fin, data: Buffer.from(data.subarray(start, end)), length });
      },
      onProtocolError(reason) {
        errors.push(reason);
      },
    },
  };
}

/** An unmasked server frame. */
function serverFrame(opcode: number, payload: Buffer, fin = true): Buffer {
  const n = payload.length;
  let head: Buffer;
  if (n < 126) head = Buffer.from([(fin ? 0x80 : 0) | opcode, n]);
  else if (n < 0x10000) {
    head = Buffer.alloc(4);
    head[0] = (fin ? 0x80 : 0) | opcode;
    head[1] = 126;
    head.writeUInt16BE(n, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = (fin ? 0x80 : 0) | opcode;
    head[1] = 127;
    head.writeUInt32BE(0, 2);
    head.writeUInt32BE(n, 6);
  }
  return Buffer.concat([head, payload]);
}

const filled = (n: number, seed: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));

describe('bench frame scanner', () => {
  const small = [
    serverFrame(OP_TEXT, Buffer.from('{"t":"a","s":1,"d":"hi"}')),
    serverFrame(OP_BINARY, Buffer.alloc(0)),
    serverFrame(OP_TEXT, filled(125, 1)),
    serverFrame(OP_BINARY, filled(126, 2)),
    serverFrame(OP_PING, Buffer.from('ping!')),
    serverFrame(OP_TEXT, filled(300, 3), false),
    serverFrame(0, filled(7, 4)),
    serverFrame(OP_PONG, Buffer.alloc(0)),
    serverFrame(OP_CLOSE, Buffer.from([0x03, 0xe8, 0x62, 0x79, 0x65])),
  ];
  const stream = Buffer.concat(small);

  function expectAll(frames: Seen[]): void {
    assert.equal(frames.length, small.length);
    assert.deepEqual(
      frames.map((f) => [f.opcode, f.fin, f.length]),
      [
        [OP_TEXT, true, 24],
        [OP_BINARY, true, 0],
        [OP_TEXT, true, 125],
        [OP_BINARY, true, 126],
        [OP_PING, true, 5],
        [OP_TEXT, false, 300],
        [0, true, 7],
        [OP_PONG, true, 0],
        [OP_CLOSE, true, 5],
      ],
    );
    assert.equal(frames[0].data.toString(), '{"t":"a","s":1,"d":"hi"}');
    assert.deepEqual(frames[2].data, filled(125, 1));
    assert.deepEqual(frames[3].data, filled(126, 2));
    assert.deepEqual(frames[5].data, filled(300, 3));
    assert.equal(frames[8].data.readUInt16BE(0), 1000);
  }

  it('decodes 7- and 16-bit lengths, fragments and control frames in one read', () => {
    const c = collector();
    new FrameScanner(c.sink).push(stream, 0, stream.length);
    assert.deepEqual(c.errors, []);
    expectAll(c.frames);
  });

  it('handles a split read at every byte boundary', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const c = collector();
      const s = new FrameScanner(c.sink);
      s.push(stream, 0, cut);
      s.push(stream, cut, stream.length);
      assert.deepEqual(c.errors, [], `cut ${cut}`);
      expectAll(c.frames);
    }
  });

  it('handles reads split at every pair of boundaries near headers', () => {
    const head = stream.subarray(0, 200);
    for (let a = 0; a <= head.length; a++) {
      for (let b = a; b <= Math.min(head.length, a + 14); b++) {
        const c = collector();
        const s = new FrameScanner(c.sink);
        s.push(stream, 0, a);
        s.push(stream, a, b);
        s.push(stream, b, stream.length);
        assert.deepEqual(c.errors, []);
        expectAll(c.frames);
      }
    }
  });

  it('handles one byte per read', () => {
    const c = collector();
    const s = new FrameScanner(c.sink);
    for (let i = 0; i < stream.length; i++) s.push(stream, i, i + 1);
    expectAll(c.frames);
  });

  it('decodes 64-bit lengths, whole or split anywhere in header and payload', () => {
    const big = filled(70000, 5);
    const bytes = Buffer.concat([serverFrame(OP_BINARY, big), serverFrame(OP_TEXT, Buffer.from('after'))]);
    for (const cut of [0, 1, 2, 5, 9, 10, 11, 1000, 10 + 2048, 69999, 70010, 70011, bytes.length]) {
      const c = collector();
      const s = new FrameScanner(c.sink, 128 * 1024);
      s.push(bytes, 0, cut);
      s.push(bytes, cut, bytes.length);
      assert.equal(c.frames.length, 2, `cut ${cut}`);
      assert.equal(c.frames[0].length, 70000);
      assert.deepEqual(c.frames[0].data, big);
      assert.equal(c.frames[1].data.toString(), 'after');
    }
  });

  it('delivers only the first `capacity` bytes of a longer frame, with its full length', () => {
    const big = filled(5000, 6);
    const bytes = Buffer.concat([serverFrame(OP_TEXT, big), serverFrame(OP_TEXT, Buffer.from('x'))]);
    for (const cut of [bytes.length, 3, 3000]) {
      const c = collector();
      const s = new FrameScanner(c.sink, 1024);
      s.push(bytes, 0, cut);
      s.push(bytes, cut, bytes.length);
      assert.equal(c.frames[0].length, 5000);
      assert.deepEqual(c.frames[0].data, big.subarray(0, 1024));
      assert.equal(c.frames[1].data.toString(), 'x');
    }
  });

  it('reports protocol errors and stops', () => {
    const cases: [string, Buffer][] = [
      ['masked server frame', Buffer.from([0x81, 0x81, 1, 2, 3, 4, 0x61])],
      ['reserved bits set', Buffer.from([0xc1, 0x00])],
      ['bad control frame', serverFrame(OP_PING, filled(126, 0))],
      ['bad control frame', serverFrame(OP_PING, Buffer.alloc(1), false)],
      ['frame too large', Buffer.from([0x82, 127, 0, 0, 1, 0, 0, 0, 0, 0])],
    ];
    for (const [reason, bytes] of cases) {
      const c = collector();
      new FrameScanner(c.sink).push(Buffer.concat([bytes, serverFrame(OP_TEXT, Buffer.from('z'))]), 0, bytes.length + 3);
      assert.deepEqual(c.errors, [reason]);
      assert.equal(c.frames.length, 0);
    }
  });
});

describe('bench client frames', () => {
  it('encodes masked frames of every length form that unmask to the payload', () => {
    const mask = Buffer.from([0x12, 0x34, 0x56, 0x78]);
    for (const n of [0, 1, 125, 126, 65535, 65536, 70000]) {
      const payload = filled(n, 9);
      const f = encodeClientFrame(OP_TEXT, payload, mask);
      assert.equal(f[0], 0x81);
      assert.equal(f[1] & 0x80, 0x80);
      const len7 = f[1] & 0x7f;
      const [len, off] = len7 < 126 ? [len7, 2] : len7 === 126 ? [f.readUInt16BE(2), 4] : [f.readUInt32BE(6), 10];
      assert.equal(len, n);
      assert.deepEqual(f.subarray(off, off + 4), mask);
      const body = Buffer.from(f.subarray(off + 4));
      maskPayload(body, 0, body.length, mask);
      assert.deepEqual(body, payload);
    }
  });
});

describe('bench payload stamp', () => {
  it('round-trips publisher id, sequence and timestamp inside any envelope', () => {
    const s = new Stamp();
    for (const [pid, seq, ts] of [
      [0, 1, 0],
      [4095, 2 ** 30 - 1, 2 ** 48 - 1],
      [17, 123456, 58_000_000_000_000],
    ]) {
      const data = Buffer.alloc(64);
      writePayload(data, 0, 64, pid, seq, ts);
      const frame = Buffer.from(`42["m",{"t":"chat.room-1","s":9,"d":"${data.toString('latin1')}"}]`);
      assert.ok(s.read(frame, 0, frame.length));
      assert.deepEqual([s.pid, s.seq, s.tsUs], [pid, seq, ts]);
    }
  });

  it('rejects frames without a complete stamp', () => {
    const s = new Stamp();
    const data = Buffer.alloc(STAMP_LEN);
    writePayload(data, 0, STAMP_LEN, 1, 2, 3);
    assert.equal(s.read(Buffer.from('{"op":"ok","id":1}'), 0, 18), false);
    assert.equal(s.read(data, 0, STAMP_LEN - 1), false);
    data[5] = 0x2e; // '.' is not a stamp digit
    assert.equal(s.read(data, 0, STAMP_LEN), false);
  });
});
