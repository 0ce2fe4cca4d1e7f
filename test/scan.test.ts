import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Packr, Unpackr } from 'msgpackr';
import { PublishScan } from '../src/protocol/command-scan';
import { parseCommand } from '../src/protocol/commands';
import { DeliveryEncoder } from '../src/protocol/delivery';
import { scanJsonValue, skipWs } from '../src/protocol/json-scan';
import { scanMsgpackValue } from '../src/protocol/msgpack-scan';
import { MAX_DEPTH_LIMIT } from '../src/protocol/depth';
import { Payload } from '../src/protocol/payload';
import { TopicList } from '../src/session/topic-list';
import { RawClient, type TestGateway, metric, sleep, startGateway } from './helpers/gateway';

const DEPTH = 8;
const fatal = new TextDecoder('utf-8', { fatal: true });
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** The scanner's verdict on a whole text: a value with optional whitespace around it. */
function scansJson(bytes: Uint8Array, depth = DEPTH): boolean {
  const p = scanJsonValue(bytes, skipWs(bytes, 0, bytes.length), bytes.length, depth);
  return p >= 0 && skipWs(bytes, p, bytes.length) === bytes.length;
}

/** JSON.parse's verdict on the same bytes decoded as strict UTF-8 (what a text frame must be). */
function parsesJson(bytes: Uint8Array): boolean {
  try {
    JSON.parse(fatal.decode(bytes));
    return true;
  } catch {
    return false;
  }
}

function nesting(bytes: Uint8Array): number {
  let max = 0;
  let d = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) max = Math.max(max, ++d);
    else if (c === 0x7d || c === 0x5d) d--;
  }
  return max;
}

const utf8 = (s: string): Uint8Array => Buffer.from(s, 'utf8');
const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);

function scansPack(b: Uint8Array, depth = DEPTH): boolean {
  return scanMsgpackValue(b, 0, b.length, depth) === b.length;
}

describe('JSON scanner', () => {
  const valid: [string, string][] = [
    ['escapes', String.raw`"\" \\ \/ \b \f \n \r \t \u00e9 \u20AC"`],
    ['unicode, raw', '"é 中 😀 \u{10FFFF}"'],
    ['surrogate pair, escaped', String.raw`"\ud83d\ude00"`],
    ['lone high surrogate, escaped', String.raw`"\ud800"`],
    ['lone low surrogate, escaped', String.raw`"x\udc00y"`],
    ['reversed pair, escaped', String.raw`"\udc00\ud800"`],
    ['numbers', '[0,-0,1,-1,1.5,-0.25,1e10,1E+2,1e-2,123456789012345678901234567890,1.7976931348623157e309]'],
    ['nesting', '{"a":[{"b":[[]]},{}],"c":{"d":null}}'],
    ['whitespace', ' \t\r\n{ "a" :\n[ 1 ,\t2 ] , "b" : true }\r\n '],
    ['literals', '[true,false,null]'],
    ['empty containers', '[{},[],""]'],
    ['duplicate keys', '{"a":1,"a":2}'],
  ];
  for (const [name, text] of valid) {
    it(`accepts ${name}`, () => {
      assert.ok(parsesJson(utf8(text)), 'JSON.parse agrees it is JSON');
      assert.equal(scansJson(utf8(text)), true);
    });
  }

  const invalid: [string, Uint8Array][] = [
    ['bad escape', utf8(String.raw`"\x"`)],
    ['short \\u', utf8(String.raw`"\u12"`)],
    ['non-hex \\u', utf8(String.raw`"\u12G4"`)],
    ['raw control character', utf8('"a\u0001b"')],
    ['raw newline in a string', utf8('"a\nb"')],
    ['unterminated string', utf8('"abc')],
    ['encoded surrogate (CESU)', bytes(0x22, 0xed, 0xa0, 0x80, 0x22)],
    ['overlong NUL', bytes(0x22, 0xc0, 0x80, 0x22)],
    ['overlong 3-byte', bytes(0x22, 0xe0, 0x80, 0xaf, 0x22)],
    ['above U+10FFFF', bytes(0x22, 0xf4, 0x90, 0x80, 0x80, 0x22)],
    ['lead byte 0xF5', bytes(0x22, 0xf5, 0x80, 0x80, 0x80, 0x22)],
    ['truncated sequence', bytes(0x22, 0xe4, 0xb8, 0x22)],
    ['stray continuation byte', bytes(0x22, 0x80, 0x22)],
    ['leading zero', utf8('01')],
    ['bare dot', utf8('1.')],
    ['no integer part', utf8('.5')],
    ['plus sign', utf8('+1')],
    ['empty exponent', utf8('1e')],
    ['hex', utf8('0x1')],
    ['NaN', utf8('NaN')],
    ['Infinity', utf8('-Infinity')],
    ['lone minus', utf8('-')],
    ['trailing comma in array', utf8('[1,]')],
    ['trailing comma in object', utf8('{"a":1,}')],
    ['missing colon', utf8('{"a" 1}')],
    ['unquoted key', utf8('{a:1}')],
    ['single quotes', utf8("'a'")],
    ['truncated literal', utf8('tru')],
    ['two values', utf8('1 2')],
    ['vertical tab as whitespace', utf8('\u000b1')],
    ['no-break space as whitespace', utf8('\u00a01')],
    ['unclosed array', utf8('[1,2')],
    ['mismatched brackets', utf8('[1}')],
    ['empty', utf8('')],
    ['comment', utf8('1 // c')],
  ];
  for (const [name, b] of invalid) {
    it(`refuses ${name}`, () => {
      assert.equal(parsesJson(b), false, 'JSON.parse agrees it is not JSON');
      assert.equal(scansJson(b), false);
    });
  }

  it('bounds nesting: deeper than the bound is refused, at the bound accepted', () => {
    assert.equal(scansJson(utf8('[[[1]]]'), 3), true);
    assert.equal(scansJson(utf8('[[[1]]]'), 2), false);
    assert.equal(scansJson(utf8('{"a":{"b":1}}'), 1), false);
    const deep = utf8('['.repeat(100_000) + ']'.repeat(100_000));
    assert.equal(scansJson(deep, MAX_DEPTH_LIMIT), false, 'no stack overflow: the bound stops it first');
  });

  it('agrees with JSON.parse on generated JSON texts, pretty-printed or not', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: DEPTH - 1 }), fc.boolean(), (v, pretty) => {
        const b = utf8(JSON.stringify(v, null, pretty ? 2 : undefined));
        assert.equal(scansJson(b), true);
      }),
      { numRuns: 2000 },
    );
  });

  it('agrees with JSON.parse on generated unicode strings, escaped or raw', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        const escaped = utf8(JSON.stringify(s)); // lone surrogates become \uXXXX (well-formed stringify)
        assert.equal(scansJson(escaped), true);
      }),
      { numRuns: 2000 },
    );
  });

  it('agrees with JSON.parse (and strict UTF-8) on mutated texts: accepts exactly what it accepts', () => {
    const alphabet = [...'{}[]",:\\ \t\n0123456789.eE+-tfrueanlsu', 'é', '\u0001'];
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), fc.array(fc.tuple(fc.nat(), fc.constantFrom(...alphabet), fc.nat(3)), { maxLength: 4 }), (v, edits) => {
        let text = JSON.stringify(v);
        for (const [at, ch, mode] of edits) {
          const i = at % (text.length + 1);
          text = mode === 0 ? text.slice(0, i) + text.slice(i + 1) : mode === 1 ? text.slice(0, i) + ch + text.slice(i) : text.slice(0, i) + ch + text.slice(i + 1);
        }
        const b = utf8(text);
        assert.equal(scansJson(b, 64), parsesJson(b) && nesting(b) <= 64, text);
      }),
      { numRuns: 5000 },
    );
  });

  it('agrees with strict UTF-8 decoding on arbitrary bytes inside a string', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 12 }), (raw) => {
        const b = Buffer.concat([Buffer.from('"'), Buffer.from(raw), Buffer.from('"')]);
        assert.equal(scansJson(b), parsesJson(b), Buffer.from(raw).toString('hex'));
      }),
      { numRuns: 5000 },
    );
  });
});

describe('msgpack scanner', () => {
  const pack = (v: unknown): Uint8Array => Uint8Array.from(packr.pack(v));
  const types: [string, Uint8Array][] = [
    ['nil', bytes(0xc0)],
    ['false, true', bytes(0x92, 0xc2, 0xc3)],
    ['positive fixint', bytes(0x7f)],
    ['negative fixint', bytes(0xe0)],
    ['uint8/16/32/64', bytes(0x94, 0xcc, 0xff, 0xcd, 0xff, 0xff, 0xce, 0, 0, 0, 1, 0xcf, 0, 0, 0, 0, 0, 0, 0, 1)],
    ['int8/16/32/64', bytes(0x94, 0xd0, 0x80, 0xd1, 0x80, 0, 0xd2, 0x80, 0, 0, 0, 0xd3, 0xff, 0, 0, 0, 0, 0, 0, 0)],
    ['float32/64', bytes(0x92, 0xca, 0x3f, 0x80, 0, 0, 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0)],
    ['fixstr', pack('héllo')],
    ['str8', pack('x'.repeat(40))],
    ['str16', pack('x'.repeat(300))],
    ['str32', bytes(0xdb, 0, 0, 0, 2, 0x61, 0x62)],
    ['bin8/16/32', bytes(0x93, 0xc4, 1, 9, 0xc5, 0, 1, 9, 0xc6, 0, 0, 0, 1, 9)],
    ['fixarray', pack([1, 2, 3])],
    ['array16', pack(Array.from({ length: 20 }, (_, i) => i))],
    ['array32', bytes(0xdd, 0, 0, 0, 1, 0xc0)],
    ['fixmap', pack({ a: 1, b: [true] })],
    ['map16', pack(Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])))],
    ['map32', bytes(0xdf, 0, 0, 0, 1, 0xa1, 0x61, 0xc0)],
  ];
  for (const [name, b] of types) {
    it(`accepts ${name}, and msgpackr decodes it`, () => {
      assert.doesNotThrow(() => unpackr.unpack(b));
      assert.equal(scansPack(b), true);
    });
    it(`refuses every truncation of ${name}`, () => {
      for (let n = 0; n < b.length; n++) assert.notEqual(scanMsgpackValue(b, 0, n, DEPTH), n, `prefix ${n} of ${b.length}`);
    });
  }

  const refused: [string, Uint8Array][] = [
    ['the never-used byte 0xc1', bytes(0xc1)],
    ['fixext1 (an extension: left to msgpackr)', bytes(0xd4, 1, 0)],
    ['ext8', bytes(0xc7, 1, 5, 0)],
    ['timestamp extension', pack(new Date(0))],
    ['a map with a non-string key (msgpackr would stringify it)', bytes(0x81, 0x01, 0xc0)],
    ['a string with invalid UTF-8', bytes(0xa2, 0xc0, 0x80)],
    ['an array longer than the buffer', bytes(0xdd, 0xff, 0xff, 0xff, 0xff)],
  ];
  for (const [name, b] of refused) {
    it(`leaves to msgpackr: ${name}`, () => assert.equal(scansPack(b), false));
  }

  it('bounds nesting', () => {
    assert.equal(scansPack(pack([[[1]]]), 3), true);
    assert.equal(scansPack(pack([[[1]]]), 2), false);
    const deep = new Uint8Array(200_000).fill(0x91);
    assert.equal(scansPack(deep, MAX_DEPTH_LIMIT), false);
  });

  it('accepts what msgpackr packs from generated values', () => {
    const value = fc.letrec((tie) => ({
      v: fc.oneof(
        { depthSize: 'small' },
        fc.constant(null),
        fc.boolean(),
        fc.integer(),
        fc.double(),
        fc.maxSafeInteger(),
        fc.string({ unit: 'grapheme' }),
        fc.uint8Array({ maxLength: 300 }),
        fc.array(tie('v'), { maxLength: 20 }),
        fc.dictionary(fc.string(), tie('v'), { maxKeys: 20 }),
      ),
    })).v;
    fc.assert(
      fc.property(value, (v) => {
        assert.equal(scansPack(pack(v), 64), true);
      }),
      { numRuns: 2000 },
    );
  });

  it('is sound on arbitrary bytes: whatever it accepts, msgpackr decodes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 24 }), (b) => {
        if (scansPack(b)) assert.doesNotThrow(() => unpackr.unpack(b), Buffer.from(b).toString('hex'));
      }),
      { numRuns: 20000 },
    );
  });
});

describe('publish scan: a plain pub located in place', () => {
  const decodeJson = (b: Uint8Array): unknown => JSON.parse(Buffer.from(b).toString('utf8'));

  it('finds topic, id and data of a JSON pub with the keys in any order, and the data bytes are the data', () => {
    const scan = new PublishScan(128, DEPTH);
    for (const text of ['{"op":"pub","topic":"news","data":{"a":[1,"x"]},"id":7}', ' { "id" : 7 , "data" : {"a" : [1, "x"]}, "topic":"news", "op":"pub" } ']) {
      const b = utf8(text);
      assert.equal(scan.socketPub(b, b.length, true), true, text);
      assert.equal(Buffer.from(b).toString('latin1', scan.topicStart(0), scan.topicEnd(0)), 'news');
      assert.equal(scan.id, 7);
      assert.deepEqual(decodeJson(b.subarray(scan.dataStart(0), scan.dataEnd(0))), { a: [1, 'x'] });
    }
  });

  it('leaves everything but a plain pub to the general path', () => {
    const scan = new PublishScan(8, DEPTH);
    const general = [
      '{"op":"sub","topic":"news"}',
      '{"op":"pub","topic":"news"}', // no data: bad_request there
      '{"op":"pub","topic":"news","data":1,"extra":1}', // unknown key (ignored there)
      '{"op":"pub","topic":"news","data":1,"data":2}', // repeated key (last wins there)
      '{"op":"pub","topic":"a-topic-too-long","data":1}', // invalid_topic there
      '{"op":"pub","topic":"bad topic","data":1}',
      '{"op":"pub","topic":"n\\u0065ws","data":1}', // escaped topic
      '{"op":"pub","topic":5,"data":1}',
      '{"op":"pub","topic":"news","data":1,"id":-1}',
      '{"op":"pub","topic":"news","data":1,"id":1.5}',
      '{"op":"pub","topic":"news","data":1,"id":01}',
      '{"op":"pub","topic":"news","data":1,"id":12345678901234567890}',
      '{"op":"pu\\u0062","topic":"news","data":1}',
      '{"op":"pub","topic":"news","data":[1,}', // malformed data: bad_frame there
      '{"op":"pub","topic":"news","data":1} x',
      '[{"op":"pub","topic":"news","data":1}]',
    ];
    for (const text of general) {
      const b = utf8(text);
      assert.equal(scan.socketPub(b, b.length, true), false, text);
    }
  });

  it('agrees with JSON.parse + parseCommand on generated commands', () => {
    const scan = new PublishScan(16, 64);
    const cmd = fc.record(
      {
        op: fc.constantFrom('pub', 'sub', 'ping'),
        topic: fc.oneof(fc.stringMatching(/^[a-z.:]{1,20}$/), fc.integer()),
        data: fc.jsonValue({ maxDepth: 4 }),
        id: fc.oneof(fc.nat(), fc.integer({ min: -5, max: -1 }), fc.double()),
        extra: fc.string(),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(cmd, fc.boolean(), (c, msgpack) => {
        const b = msgpack ? pack(c) : utf8(JSON.stringify(c));
        const taken = scan.socketPub(b, b.length, !msgpack);
        let parsed;
        try {
          parsed = parseCommand(msgpack ? unpackr.unpack(b) : decodeJson(b), 16);
        } catch {
          parsed = null;
        }
        if (!taken) return;
        assert.ok(parsed !== null && 'op' in parsed && parsed.op === 'pub', 'taken only when the general path has a valid pub');
        assert.equal(Buffer.from(b).toString('latin1', scan.topicStart(0), scan.topicEnd(0)), parsed.topic);
        assert.equal(scan.id === -1 ? undefined : scan.id, parsed.id);
        const data = b.subarray(scan.dataStart(0), scan.dataEnd(0));
        assert.deepEqual(msgpack ? unpackr.unpack(data) : decodeJson(data), parsed.data);
      }),
      { numRuns: 3000 },
    );
    function pack(v: unknown): Uint8Array {
      return Uint8Array.from(packr.pack(v));
    }
  });

  it('reads POST /publish bodies: one item or a batch, JSON or msgpack; anything else is left alone', () => {
    const scan = new PublishScan(128, DEPTH, 3);
    const items = [
      { topic: 'a', data: { x: 1 } },
      { data: [2], topic: 'b' },
    ];
    for (const msgpack of [false, true]) {
      const enc = (v: unknown): Uint8Array => (msgpack ? Uint8Array.from(packr.pack(v)) : utf8(JSON.stringify(v)));
      const dec = (b: Uint8Array): unknown => (msgpack ? unpackr.unpack(b) : decodeJson(b));
      for (const body of [items[0], items]) {
        const b = enc(body);
        assert.equal(scan.httpBody(b, b.length, !msgpack), true);
        const list = Array.isArray(body) ? body : [body];
        assert.equal(scan.count, list.length);
        list.forEach((item, i) => {
          assert.equal(Buffer.from(b).toString('latin1', scan.topicStart(i), scan.topicEnd(i)), item.topic);
          assert.deepEqual(dec(b.subarray(scan.dataStart(i), scan.dataEnd(i))), item.data);
        });
      }
      for (const body of [[], [...items, ...items], { topic: 'a' }, { topic: 'a', data: 1, op: 'pub' }, [items[0], 5]]) {
        const b = enc(body);
        assert.equal(scan.httpBody(b, b.length, !msgpack), false, JSON.stringify(body));
      }
    }
    for (const text of ['[{"topic":"a","data":1},]', '[{"topic":"a","data":1}', '[{"topic":"a","data":1}] x']) {
      const b = utf8(text);
      assert.equal(scan.httpBody(b, b.length, true), false, text);
    }
  });
});

describe('delivery frames from raw data bytes', () => {
  it('frames JSON and msgpack data bytes as the encoder frames decoded data', () => {
    const enc = new DeliveryEncoder(16);
    fc.assert(
      fc.property(fc.jsonValue(), fc.stringMatching(/^[a-z]{1,40}$/), fc.maxSafeNat(), (v, topic, seq) => {
        const text = Buffer.from(`  ${JSON.stringify(v)}  `);
        const start = 2;
        const end = text.length - 2;
        const frame = Buffer.from(new Payload().setRaw(text, start, end, true).jsonFrame(enc, topic, seq)).toString('utf8');
        assert.deepEqual(JSON.parse(frame), JSON.parse(enc.json(topic, seq, JSON.stringify(v)).toString()));
        const packed = Buffer.from(packr.pack(v));
        const fromRaw = Buffer.from(new Payload().setRaw(packed, 0, packed.length, false).msgpackFrame(enc, topic, seq));
        assert.deepEqual(fromRaw, Buffer.from(enc.msgpack(topic, seq, packed)));
        assert.deepEqual(unpackr.unpack(fromRaw), { t: topic, s: seq, d: unpackr.unpack(packed) });
      }),
      { numRuns: 1000 },
    );
  });

  it('converts raw data for the other codec when it must', () => {
    const enc = new DeliveryEncoder();
    const text = Buffer.from('{"a":[1,"é"]}');
    const p = new Payload().setRaw(text, 0, text.length, true);
    assert.deepEqual(unpackr.unpack(p.msgpackFrame(enc, 't', 3)), { t: 't', s: 3, d: { a: [1, 'é'] } });
    const packed = Buffer.from(packr.pack({ b: new Uint8Array([1, 2, 3]) }));
    const q = new Payload().setRaw(packed, 0, packed.length, false);
    assert.deepEqual(JSON.parse(Buffer.from(q.jsonFrame(enc, 't', 4)).toString()), { t: 't', s: 4, d: { b: 'AQID' } });
  });
});

describe('scanned publishes through a real gateway', () => {
  let g: TestGateway;
  before(async () => (g = await startGateway(['--client-publish'])));
  after(() => g.stop());

  it('delivers a plain pub byte for byte to its own codec, converted to the other, and refuses malformed data with bad_frame', async () => {
    const j = await RawClient.open(`${g.ws}?topics=raw`, 'wsgate.json');
    const m = await RawClient.open(`${g.ws}?topics=raw`, 'wsgate.msgpack');
    const data = '{ "b" : [1.50, "\\u00e9\\ud800", 1e2],"a":null }';
    j.ws.send(`{"op":"pub","topic":"raw","id":1,"data":${data}}`);
    await j.received(2);
    await m.received(1);
    assert.equal(j.messages[0], `{"t":"raw","s":1,"d":${data}}`, 'the data bytes as sent');
    assert.deepEqual(JSON.parse(j.messages[1] as string), { op: 'ok', id: 1, seq: 1 });
    // Converted as the general path always has (msgpack cannot carry a lone surrogate either way).
    assert.deepEqual(unpackr.unpack(m.messages[0] as Buffer), { t: 'raw', s: 1, d: unpackr.unpack(packr.pack(JSON.parse(data))) });

    const packedData = packr.pack({ bin: new Uint8Array([1, 2, 3]), n: -1.5 });
    const frame = Buffer.concat([Buffer.from([0x84, 0xa2, 0x6f, 0x70, 0xa3, 0x70, 0x75, 0x62, 0xa5, ...Buffer.from('topic'), 0xa3, ...Buffer.from('raw'), 0xa2, 0x69, 0x64, 0x02, 0xa4, ...Buffer.from('data')]), packedData]);
    m.ws.send(frame);
    await m.received(3);
    await j.received(3);
    assert.deepEqual(Buffer.from(m.messages[1] as Buffer).subarray(-packedData.length), Buffer.from(packedData), 'msgpack data bytes as sent');
    assert.deepEqual(JSON.parse(j.messages[2] as string), { t: 'raw', s: 2, d: { bin: 'AQID', n: -1.5 } });

    for (const bad of ['{"op":"pub","topic":"raw","data":[1,}', '{"op":"pub","topic":"raw","data":01}', '{"op":"pub","topic":"raw","data":"\\x"}']) {
      const before = j.messages.length;
      j.ws.send(bad);
      await j.received(before + 1);
      assert.deepEqual(JSON.parse(j.messages[before] as string), { op: 'err', code: 'bad_frame', reason: 'frame is not valid json' }, bad);
    }
    j.close();
    m.close();
  });

  it('takes a POST /publish batch in place and answers every item', async () => {
    const j = await RawClient.open(`${g.ws}?topics=b1,b2`, 'wsgate.json');
    const res = await fetch(`${g.http}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[{"topic":"b1","data":{"x" : 1}}, {"data":[2],"topic":"b2"}]' });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { results: [{ topic: 'b1', seq: 1 }, { topic: 'b2', seq: 1 }] });
    await j.received(2);
    assert.deepEqual(j.messages, ['{"t":"b1","s":1,"d":{"x" : 1}}', '{"t":"b2","s":1,"d":[2]}']);
    j.close();
  });
});

describe('scanned publishes keep the gateway limits', () => {
  let g: TestGateway;
  before(async () => (g = await startGateway(['--client-publish', '--max-commands-per-second', '10', '--command-burst', '3', '--max-depth', '2'])));
  after(() => g.stop());

  it('a plain pub over the command rate is refused with rate_limited and its id, and not published', async () => {
    const sub = await RawClient.open(`${g.ws}?topics=rl`);
    const c = await RawClient.open(g.ws);
    for (let id = 1; id <= 4; id++) c.ws.send(`{"op":"pub","topic":"rl","id":${id},"data":${id}}`);
    await c.received(4);
    assert.deepEqual(
      c.json().map((r) => [r.op, r.id, r.seq ?? r.code]),
      [['ok', 1, 1], ['ok', 2, 2], ['ok', 3, 3], ['err', 4, 'rate_limited']],
    );
    await sub.received(3);
    await sleep(150);
    assert.deepEqual(sub.messages, ['{"t":"rl","s":1,"d":1}', '{"t":"rl","s":2,"d":2}', '{"t":"rl","s":3,"d":3}']);
    sub.close();
    c.close();
  });

  it('data deeper than --max-depth is refused as the general path refuses it (socket and POST /publish)', async () => {
    const c = await RawClient.open(g.ws);
    const before = await metric(g.http, 'wsgate_too_deep_total{source="socket"}');
    c.ws.send('{"op":"pub","topic":"deep","id":1,"data":[[1]]}');
    c.ws.send('{"op":"pub","topic":"deep","id":2,"data":[[[1]]]}');
    await c.received(2);
    assert.deepEqual(c.json(), [
      { op: 'ok', id: 1, seq: 1 },
      { op: 'err', code: 'bad_frame', reason: 'data nests deeper than 2 levels' },
    ]);
    assert.equal(await metric(g.http, 'wsgate_too_deep_total{source="socket"}'), before + 1);
    const res = await fetch(`${g.http}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"topic":"deep","data":[[[1]]]}' });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { code: string }).code, 'bad_frame');
    c.close();
  });
});

describe('TopicList', () => {
  it('holds one topic, a few and many, in order, like a Set', () => {
    const l = new TopicList();
    const model = new Set<string>();
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 40 })), { maxLength: 200 }), (ops) => {
        for (const [add, n] of ops) {
          const t = `t${n}`;
          if (add && !l.has(t)) {
            l.add(t);
            model.add(t);
          } else if (!add) assert.equal(l.delete(t), model.delete(t));
          assert.equal(l.size, model.size);
          assert.deepEqual(new Set(l), model);
        }
      }),
      { numRuns: 200 },
    );
  });
});
