import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pack, unpack } from 'msgpackr';
import { GatewayClient } from '../src/client/gateway-client';
import { packr } from '../src/protocol/msgpack';
import { RawClient, type TestGateway, metric, startGateway, waitFor } from './helpers/gateway';

describe('wire protocol: sub/unsub/pub in both codecs', () => {
  let g: TestGateway;
  // 300 publishes from one socket at once: over the default command burst (200), which is not under test here.
  before(async () => (g = await startGateway(['--client-publish', '--max-topics-per-conn', '3', '--max-payload', '1024', '--max-commands-per-second', '0'])));
  after(() => g.stop());

  it('JSON and msgpack subscribers of one topic each get the delivery in their own codec', async () => {
    const j = await RawClient.open(g.ws, 'wsgate.json');
    const m = await RawClient.open(g.ws, 'wsgate.msgpack');
    j.ws.send(JSON.stringify({ op: 'sub', topic: 'mixed', id: 1 }));
    m.ws.send(pack({ op: 'sub', topic: 'mixed', id: 2 }));
    await j.received(1);
    await m.received(1);
    assert.deepEqual(JSON.parse(j.messages[0] as string), { op: 'ok', id: 1, seq: 0, epoch: (JSON.parse(j.messages[0] as string) as { epoch: string }).epoch });
    assert.equal((unpack(m.messages[0] as Buffer) as { op: string }).op, 'ok');

    j.ws.send(JSON.stringify({ op: 'pub', topic: 'mixed', data: { a: [1, 'x'] }, id: 3 }));
    await j.received(3);
    await m.received(2);
    assert.deepEqual(JSON.parse(j.messages[1] as string), { t: 'mixed', s: 1, d: { a: [1, 'x'] } });
    assert.deepEqual(JSON.parse(j.messages[2] as string), { op: 'ok', id: 3, seq: 1 });
    assert.ok(Buffer.isBuffer(m.messages[1]), 'msgpack subscriber gets a binary frame');
    assert.deepEqual(unpack(m.messages[1] as Buffer), { t: 'mixed', s: 1, d: { a: [1, 'x'] } });

    m.ws.send(pack({ op: 'pub', topic: 'mixed', data: new Uint8Array([1, 2, 3]), id: 4 }));
    await j.received(4);
    await m.received(4);
    assert.deepEqual(JSON.parse(j.messages[3] as string), { t: 'mixed', s: 2, d: 'AQID' }, 'binary data reaches JSON as base64');
    assert.deepEqual([...(unpack(m.messages[2] as Buffer) as { d: Uint8Array }).d], [1, 2, 3], 'msgpack gets the bytes back');
    j.close();
    m.close();
  });

  it('a topic with subscribers of one codec never pays for the other encoding', async () => {
    const origPack = packr.pack.bind(packr);
    const origStringify = JSON.stringify;
    let packs = 0;
    let stringifies = 0;
    packr.pack = ((v: unknown) => (packs++, origPack(v))) as typeof packr.pack;
    JSON.stringify = ((...args: Parameters<typeof JSON.stringify>) => (stringifies++, origStringify(...args))) as typeof JSON.stringify;
    try {
      const j = await GatewayClient.connect(g.ws, { topics: ['only-json'] });
      const m = await GatewayClient.connect(g.ws, { topics: ['only-pack'], codec: 'msgpack' });
      const got: unknown[] = [];
      j.onDelivery = m.onDelivery = (d) => got.push(d);
      packs = 0;
      await j.pub('only-json', 'x');
      await waitFor(() => got.length === 1);
      assert.equal(packs, 0, 'no msgpack encoding for a JSON-only topic');
      stringifies = 0;
      await m.pub('only-pack', 'y');
      await waitFor(() => got.length === 2);
      assert.equal(stringifies, 0, 'no JSON encoding for a msgpack-only topic');
      await j.close();
      await m.close();
    } finally {
      packr.pack = origPack;
      JSON.stringify = origStringify;
    }
  });

  it('topics= subscribes on connect', async () => {
    const c = await GatewayClient.connect(g.ws, { topics: ['a', 'b'] });
    const got: string[] = [];
    c.onDelivery = (d) => got.push(`${d.t}:${d.s}`);
    await c.pub('a', 1);
    await c.pub('b', 2);
    await waitFor(() => got.length === 2);
    assert.deepEqual(got.sort(), ['a:1', 'b:1']);
    await c.close();
  });

  it('unsub stops deliveries; sub and unsub are idempotent', async () => {
    const c = await GatewayClient.connect(g.ws);
    const got: number[] = [];
    c.onDelivery = (d) => got.push(d.s);
    await c.sub('u');
    await c.sub('u');
    await c.pub('u', 1);
    await waitFor(() => got.length === 1);
    await c.unsub('u');
    await c.unsub('u');
    await c.pub('u', 2);
    await c.ping();
    assert.deepEqual(got, [1]);
    await c.close();
  });

  it('fans out to many subscribers in order with consecutive sequences', async () => {
    const subs = await Promise.all(Array.from({ length: 100 }, (_, i) => GatewayClient.connect(g.ws, { topics: ['fan'], codec: i % 2 ? 'msgpack' : 'json' })));
    const seen = subs.map(() => [] as number[]);
    subs.forEach((s, i) => (s.onDelivery = (d) => (seen[i] as number[]).push(d.s)));
    const pub = await GatewayClient.connect(g.ws);
    const N = 300;
    for (let i = 0; i < N; i++) pub.command({ op: 'pub', topic: 'fan', data: { i } }).catch(() => {});
    await waitFor(() => seen.every((s) => s.length === N), 15000, 'all deliveries');
    const expected = Array.from({ length: N }, (_, i) => i + 1);
    for (const s of seen) assert.deepEqual(s, expected);
    await Promise.all([...subs, pub].map((c) => c.close()));
  });
});

describe('bad input: documented replies and close codes, counted, harmless to others', () => {
  let g: TestGateway;
  let bystander: GatewayClient;
  const bystanderGot: number[] = [];
  before(async () => {
    g = await startGateway(['--max-topics-per-conn', '2', '--max-payload', '1024', '--max-topic-length', '16']);
    bystander = await GatewayClient.connect(g.ws, { topics: ['calm'] });
    bystander.onDelivery = (d) => bystanderGot.push(d.s);
  });
  after(async () => {
    await bystander.close();
    await g.stop();
  });

  const cases: [string, string | Buffer, boolean, string, number | undefined][] = [
    ['invalid JSON', '{nope', false, 'bad_frame', undefined],
    ['a JSON array', '[1,2]', false, 'bad_frame', undefined],
    ['a binary frame on a JSON connection', Buffer.from([1, 2]), true, 'bad_frame', undefined],
    ['a missing op', '{"id":1}', false, 'unknown_op', 1],
    ['an unknown op', '{"op":"dance","id":2}', false, 'unknown_op', 2],
    ['a non-integer id', '{"op":"ping","id":1.5}', false, 'bad_request', undefined],
    ['a topic that is not a string', '{"op":"sub","topic":5,"id":3}', false, 'bad_request', 3],
    ['an empty topic', '{"op":"sub","topic":"","id":4}', false, 'invalid_topic', 4],
    ['a topic with spaces', '{"op":"sub","topic":"a b","id":5}', false, 'invalid_topic', 5],
    ['a too long topic', '{"op":"sub","topic":"aaaaaaaaaaaaaaaaa","id":6}', false, 'invalid_topic', 6],
    ['pub without data', '{"op":"pub","topic":"x","id":7}', false, 'bad_request', 7],
    ['pub from a client when client publish is off', '{"op":"pub","topic":"x","data":1,"id":8}', false, 'forbidden', 8],
    ['a malformed since', '{"op":"sub","topic":"x","since":{"seq":-1,"epoch":"e"},"id":9}', false, 'bad_since', 9],
  ];
  for (const [what, frame, binary, code, id] of cases) {
    it(`${what} → err ${code}`, async () => {
      const c = await RawClient.open(g.ws);
      const before = await metric(g.http, `wsgate_errors_total{code="${code}"}`);
      c.ws.send(frame, { binary });
      await c.received(1);
      const reply = c.json()[0] as Record<string, unknown>;
      assert.equal(reply.op, 'err');
      assert.equal(reply.code, code);
      assert.equal(reply.id, id);
      assert.equal(typeof reply.reason, 'string');
      assert.equal((await metric(g.http, `wsgate_errors_total{code="${code}"}`)) - (Number.isNaN(before) ? 0 : before), 1);
      c.ws.send('{"op":"ping","id":99}');
      await c.received(2);
      assert.deepEqual(c.json()[1], { op: 'ok', id: 99 }, 'the connection stays usable');
      c.close();
    });
  }

  it('text on a msgpack connection → err bad_frame (msgpack)', async () => {
    const c = await RawClient.open(g.ws, 'wsgate.msgpack');
    c.ws.send('{"op":"ping"}');
    await c.received(1);
    assert.equal((unpack(c.messages[0] as Buffer) as { code: string }).code, 'bad_frame');
    c.ws.send(Buffer.from([0x82, 0xa2]));
    await c.received(2);
    assert.equal((unpack(c.messages[1] as Buffer) as { code: string }).code, 'bad_frame', 'undecodable msgpack');
    c.close();
  });

  it('a text frame with invalid UTF-8 is failed by the transport (RFC 6455 §8.1), counted as error', async () => {
    const c = await RawClient.open(g.ws);
    const before = await metric(g.http, 'wsgate_disconnects_total{reason="error"}');
    c.ws.send(Buffer.from([0x7b, 0xff, 0x7d]), { binary: false });
    assert.equal(await c.closed(), 1006);
    await waitFor(async () => (await metric(g.http, 'wsgate_disconnects_total{reason="error"}')) === before + 1);
  });

  it('more subscriptions than allowed → err too_many_topics', async () => {
    const c = await GatewayClient.connect(g.ws);
    await c.sub('t1');
    await c.sub('t2');
    await assert.rejects(c.sub('t3'), { code: 'too_many_topics' });
    await c.sub('t1');
    await c.close();
  });

  it('a message over max-payload → close 1009, counted as too_big', async () => {
    const c = await RawClient.open(g.ws);
    c.ws.send('x'.repeat(1025));
    assert.equal(await c.closed(), 1009);
    await waitFor(async () => (await metric(g.http, 'wsgate_disconnects_total{reason="too_big"}')) === 1);
  });

  it('exactly max-payload is accepted', async () => {
    const c = await RawClient.open(g.ws);
    c.ws.send(JSON.stringify({ op: 'ping', id: 1, pad: 'x'.repeat(1024 - 29) }));
    await c.received(1);
    assert.deepEqual(c.json()[0], { op: 'ok', id: 1 });
    c.close();
  });

  it('a message over the transport hard limit (4 × max-payload) is cut (1006)', async () => {
    const c = await RawClient.open(g.ws);
    c.ws.send('x'.repeat(4 * 1024 + 1));
    assert.equal(await c.closed(), 1006);
  });

  it('none of it disturbed another client', async () => {
    const res = await fetch(`${g.http}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"topic":"calm","data":1}' });
    assert.equal(res.status, 200);
    await waitFor(() => bystanderGot.length === 1);
    assert.equal(bystander.ws.readyState, 1);
  });
});
