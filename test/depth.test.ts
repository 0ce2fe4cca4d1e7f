import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Packr, pack } from 'msgpackr';
import Redis from 'ioredis';
import { connect as natsConnect } from 'nats';
import { type Delivery, GatewayClient } from '../src/client/gateway-client';
import { encodeEnvelope } from '../src/broker/envelope';
import { channelOf, logKey, metaKey } from '../src/broker/redis-scripts';
import { MALFORMED, TOO_DEEP, jsonDepth, msgpackDepth } from '../src/protocol/depth';
import { Payload } from '../src/protocol/payload';
import type { Gateway } from '../src/server/gateway';
import { BrokerServer, eventually, startNode } from './helpers/brokers';
import { type ChildGateway, metric, spawnGateway, waitFor } from './helpers/gateway';

const MAX_DEPTH = 64; // the default --max-depth

/** Nesting of arrays/objects in a plain value (0 for a scalar). */
function depthOf(v: unknown): number {
  if (v === null || typeof v !== 'object') return 0;
  const children = Array.isArray(v) ? v : Object.values(v);
  return 1 + children.reduce<number>((m, c) => Math.max(m, depthOf(c)), 0);
}

const nested = (n: number, leaf: unknown = 0): unknown => {
  let v = leaf;
  for (let i = 0; i < n; i++) v = i % 2 === 0 ? [v] : { k: v };
  return v;
};
const deepJson = (n: number) => '['.repeat(n) + ']'.repeat(n);
/** msgpack `[[[…nil…]]]` n deep, written directly (msgpackr itself would overflow packing it). */
const deepPack = (n: number) => Buffer.concat([Buffer.alloc(n, 0x91), Buffer.from([0xc0])]);
const text = (s: string) => new TextEncoder().encode(s);
/** Bytes as an envelope's data, msgpack unless `json`. */
const asData = (b: Buffer, json = false) => new Payload().setRaw(b, 0, b.length, json);

describe('nesting scans (src/protocol/depth.ts)', () => {
  const values = fc.jsonValue({ maxDepth: 8 });

  it('jsonDepth equals the nesting of any JSON value, including strings full of brackets and escapes', () => {
    fc.assert(
      fc.property(values, fc.string(), (v, s) => {
        const doc = [v, s, '"[{\\"'];
        assert.equal(jsonDepth(text(JSON.stringify(doc)), 100), depthOf(doc));
        assert.equal(jsonDepth(text(JSON.stringify(v)), 100), depthOf(v));
      }),
      { numRuns: 500 },
    );
  });

  it('msgpackDepth equals the nesting of any value msgpackr packs, and MALFORMED for every truncation', () => {
    const packr = new Packr({ useRecords: false });
    fc.assert(
      fc.property(values, (v) => {
        const b = packr.pack(v);
        assert.equal(msgpackDepth(b, 100), depthOf(v));
        for (const cut of [b.length - 1, b.length >> 1]) if (cut >= 0 && cut < b.length) assert.equal(msgpackDepth(b.subarray(0, cut), 100), MALFORMED);
        assert.equal(msgpackDepth(Buffer.concat([b, Buffer.from([0xc0])]), 100), MALFORMED, 'trailing bytes');
      }),
      { numRuns: 500 },
    );
  });

  it('stops at the limit: exactly the limit passes, one more is TOO_DEEP', () => {
    for (const limit of [1, 2, 64, 1000]) {
      assert.equal(jsonDepth(text(deepJson(limit)), limit), limit);
      assert.equal(jsonDepth(text(deepJson(limit + 1)), limit), TOO_DEEP);
      assert.equal(msgpackDepth(deepPack(limit), limit), limit);
      assert.equal(msgpackDepth(deepPack(limit + 1), limit), TOO_DEEP);
    }
    assert.equal(jsonDepth(text(deepJson(20_000)), 65), TOO_DEEP);
    assert.equal(msgpackDepth(deepPack(20_000), 65), TOO_DEEP);
  });

  it('refuses lengths the bytes do not back, the unused 0xc1 and every extension but undefined and timestamp', () => {
    assert.equal(msgpackDepth(Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0]), 10), MALFORMED, 'array32 claiming 4 G elements');
    assert.equal(msgpackDepth(Buffer.from([0xdf, 0x7f, 0xff, 0xff, 0xff]), 10), MALFORMED, 'map32 claiming 2 G pairs');
    assert.equal(msgpackDepth(Buffer.from([0xdb, 0x00, 0x10, 0x00, 0x00, 0x61]), 10), MALFORMED, 'str32 claiming 1 MiB');
    assert.equal(msgpackDepth(Buffer.from([0xc1]), 10), MALFORMED);
    assert.equal(msgpackDepth(Buffer.from([0xd4, 0x42, 0x05]), 10), MALFORMED, 'BigInt extension');
    assert.equal(msgpackDepth(Buffer.from([0xd6, 0x69, 0, 0, 0, 1, 0x90]), 10), MALFORMED, 'structured-clone id extension');
    assert.equal(msgpackDepth(Buffer.from([0xd4, 0x73, 0x00]), 10), MALFORMED, 'Set extension');
    assert.equal(msgpackDepth(pack(undefined), 10), 0);
    assert.equal(msgpackDepth(pack(new Date(0)), 10), 0);
    assert.equal(msgpackDepth(pack([1n << 63n]), 10), 1, 'uint64 is a plain integer');
  });
});

describe('data nested deeper than --max-depth is refused on every path, and the process lives', () => {
  let g: ChildGateway;
  let http: string;
  let url: string;
  const subs: { c: GatewayClient; got: Delivery[] }[] = [];

  before(async () => {
    g = await spawnGateway(['--client-publish']);
    http = `http://127.0.0.1:${g.port}`;
    url = `ws://127.0.0.1:${g.port}/ws`;
    for (const codec of ['json', 'msgpack'] as const) {
      const c = await GatewayClient.connect(url, { codec, topics: ['deep'] });
      const got: Delivery[] = [];
      c.onDelivery = (d) => got.push(d);
      subs.push({ c, got });
    }
  });
  after(async () => {
    await Promise.all(subs.map((s) => s.c.close()));
    await g.stop();
  });

  const alive = async () => {
    assert.equal(g.child.exitCode, null, g.output());
    assert.equal((await fetch(`${http}/healthz`)).status, 200);
  };
  const post = (body: string | Uint8Array, type = 'application/json') => fetch(`${http}/publish`, { method: 'POST', headers: { 'content-type': type }, body: body as BodyInit });
  /** Sends a raw frame and returns the next reply that is not a delivery. */
  const rawCommand = async (c: GatewayClient, frame: string | Buffer) => {
    const reply = new Promise<Record<string, unknown>>((resolve) => (c.onNotice = (r) => resolve(r as unknown as Record<string, unknown>)));
    c.ws.send(frame);
    return reply;
  };
  const delivered = async (n: number) => waitFor(() => subs.every((s) => s.got.length >= n), 5000, `${n} deliveries on both codecs`);

  it('POST /publish, JSON data 20,000 deep (the reported crash): 400 bad_frame, counted', async () => {
    const before = await metric(http, 'wsgate_too_deep_total{source="http"}');
    const res = await post(`{"topic":"deep","data":${deepJson(20_000)}}`);
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), { code: 'bad_frame', reason: `data nests deeper than ${MAX_DEPTH} levels` });
    assert.equal(await metric(http, 'wsgate_too_deep_total{source="http"}'), before + 1);
    await alive();
  });

  it('POST /publish, msgpack data 20,000 deep: 400 bad_frame', async () => {
    // {"topic":"deep","data":<deep>}: a fixmap of two, the deep array written after the "data" key.
    const head = Buffer.concat([Buffer.from([0x82]), pack('topic'), pack('deep'), pack('data')]);
    const res = await post(Buffer.concat([head, deepPack(20_000)]), 'application/msgpack');
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { code: string }).code, 'bad_frame');
    await alive();
  });

  it('socket pub, JSON and msgpack, 20,000 deep: err bad_frame, counted', async () => {
    const before = await metric(http, 'wsgate_too_deep_total{source="socket"}');
    const json = await GatewayClient.connect(url);
    assert.deepEqual(await rawCommand(json, `{"op":"pub","topic":"deep","data":${deepJson(20_000)}}`), { op: 'err', code: 'bad_frame', reason: `data nests deeper than ${MAX_DEPTH} levels` });
    const mp = await GatewayClient.connect(url, { codec: 'msgpack' });
    const head = Buffer.concat([Buffer.from([0x83]), pack('op'), pack('pub'), pack('topic'), pack('deep'), pack('data')]);
    assert.equal((await rawCommand(mp, Buffer.concat([head, deepPack(20_000)]))).code, 'bad_frame');
    assert.equal(await metric(http, 'wsgate_too_deep_total{source="socket"}'), before + 2);
    await Promise.all([json.close(), mp.close()]);
    await alive();
  });

  it(`exactly --max-depth (${MAX_DEPTH}) levels of data pass on every path; one more is refused`, async () => {
    const at = subs[0]?.got.length ?? 0;
    const ok = nested(MAX_DEPTH);
    const over = nested(MAX_DEPTH + 1);
    for (const codec of ['json', 'msgpack'] as const) {
      const c = await GatewayClient.connect(url, { codec });
      await c.pub('deep', ok);
      // Refused before it is read, so the reply carries no id (like any bad_frame).
      const frame = { op: 'pub', topic: 'deep', id: 99, data: over };
      assert.equal((await rawCommand(c, codec === 'json' ? JSON.stringify(frame) : pack(frame))).code, 'bad_frame');
      await c.close();
    }
    for (const [body, type] of [
      [JSON.stringify({ topic: 'deep', data: ok }), 'application/json'],
      [` \n[${JSON.stringify({ topic: 'deep', data: ok })}]`, 'application/json'],
      [pack({ topic: 'deep', data: ok }), 'application/msgpack'],
      [pack([{ topic: 'deep', data: ok }]), 'application/msgpack'],
    ] as const) {
      assert.equal((await post(body, type)).status, 200);
    }
    for (const [body, type] of [
      [JSON.stringify({ topic: 'deep', data: over }), 'application/json'],
      [JSON.stringify([{ topic: 'deep', data: over }]), 'application/json'],
      [pack({ topic: 'deep', data: over }), 'application/msgpack'],
      [pack([{ topic: 'deep', data: over }]), 'application/msgpack'],
    ] as const) {
      assert.equal((await post(body, type)).status, 400);
    }
    await delivered(at + 6);
    for (const s of subs) for (const d of s.got.slice(at)) assert.deepEqual(d.d, ok);
    await alive();
  });

  it('msgpack 64-bit integers reach JSON subscribers as numbers (a BigInt made JSON.stringify throw)', async () => {
    const at = subs[0]?.got.length ?? 0;
    const c = await GatewayClient.connect(url, { codec: 'msgpack' });
    const head = Buffer.concat([Buffer.from([0x84]), pack('op'), pack('pub'), pack('topic'), pack('deep'), pack('id'), pack(1), pack('data')]);
    const reply = rawCommand(c, Buffer.concat([head, Buffer.from([0xcf, 0, 0, 0, 0, 0, 0, 0, 42])]));
    await delivered(at + 1);
    assert.equal(subs[0]?.got[at]?.d, 42);
    assert.equal(subs[1]?.got[at]?.d, 42);
    assert.equal((await reply).op, 'ok');
    await c.close();
    const res = await post(Buffer.concat([Buffer.from([0x82]), pack('topic'), pack('deep'), pack('data'), Buffer.from([0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe])]), 'application/msgpack');
    assert.equal(res.status, 200);
    await delivered(at + 2);
    assert.equal(subs[0]?.got[at + 1]?.d, -2);
    await alive();
  });

  it('msgpack extensions that build BigInts, cycles or objects are bad_frame', async () => {
    const c = await GatewayClient.connect(url, { codec: 'msgpack' });
    const head = Buffer.concat([Buffer.from([0x83]), pack('op'), pack('pub'), pack('topic'), pack('deep'), pack('data')]);
    for (const ext of [
      [0xd4, 0x42, 0x05], // BigInt
      [0xd6, 0x69, 0, 0, 0, 1, 0x91, 0xd6, 0x70, 0, 0, 0, 1], // structured clone: an array holding itself
      [0xd4, 0x65, 0x92, 0xa1, 0x78, 0xa1, 0x79], // Error
    ]) {
      assert.deepEqual(await rawCommand(c, Buffer.concat([head, Buffer.from(ext)])), { op: 'err', code: 'bad_frame', reason: 'frame is not valid msgpack' });
    }
    await c.close();
    await alive();
  });
});

describe('a foreign broker message nested too deep is ignored and counted, not fatal', { timeout: 30_000 }, () => {
  let broker: BrokerServer;
  let node: { gateway: Gateway; url: string };

  before(async () => {
    broker = await BrokerServer.start('nats');
    node = await startNode(broker.url);
    await eventually('broker up', () => node.gateway.broker.ready());
  });
  after(async () => {
    await node.gateway.close();
    await broker.stop();
  });

  it('NATS: an envelope whose data is 20,000 deep reaches nobody; the next publish does', async () => {
    const sub = await GatewayClient.connect(node.url, { topics: [] });
    const got: Delivery[] = [];
    sub.onDelivery = (d) => got.push(d);
    await sub.sub('foreign');
    const nc = await natsConnect({ servers: broker.url });
    const rejected = node.gateway.stats.brokerRejected;
    nc.publish('wsgate.t.foreign', encodeEnvelope('foreign', 0, '', Date.now(), 'other-node', 'socket', asData(deepPack(20_000))));
    nc.publish('wsgate.t.foreign', encodeEnvelope('foreign', 0, '', Date.now(), 'other-node', 'socket', asData(Buffer.from([0xd4, 0x42, 0x05]))));
    await nc.flush();
    await eventually('both rejected', () => node.gateway.stats.brokerRejected === rejected + 2);
    assert.equal(node.gateway.stats.tooDeep.broker, 1);
    await sub.pub('foreign', 'after');
    await eventually('the next publish delivered', () => got.length === 1);
    assert.equal(got[0]?.d, 'after');
    await nc.close();
    await sub.close();
  });
});

describe('Redis: foreign data nested too deep, live or retained, is ignored, never decoded', { timeout: 30_000 }, () => {
  let broker: BrokerServer;
  let node: { gateway: Gateway; port: number; url: string };
  let admin: Redis;

  before(async () => {
    broker = await BrokerServer.start('redis');
    // No linger: once its subscribers leave, the node drops the topic and a resume must come from the stream.
    node = await startNode(broker.url, ['--broker-linger', '0']);
    await eventually('broker up', () => node.gateway.broker.ready());
    admin = new Redis(broker.url);
  });
  after(async () => {
    admin.disconnect();
    await node.gateway.close();
    await broker.stop();
  });

  it('a deep message on the channel is rejected; a deep entry in the stream is neither replayed nor served as history', async () => {
    const sub = await GatewayClient.connect(node.url);
    const got: Delivery[] = [];
    sub.onDelivery = (d) => got.push(d);
    const { epoch } = (await sub.sub('r')) as { epoch: string };
    await sub.pub('r', 'first');
    await eventually('first delivered', () => got.length === 1);

    const rejected = node.gateway.stats.brokerRejected;
    await admin.publish(channelOf('r'), encodeEnvelope('r', 2, epoch, Date.now(), 'other-node', 'socket', asData(deepPack(20_000))));
    await eventually('live deep message rejected', () => node.gateway.stats.brokerRejected === rejected + 1);

    // A foreign producer appends seq 2 with deep data to the topic's stream and position.
    await admin.hincrby(metaKey('r'), 'seq', 1);
    await admin.xadd(logKey('r'), '2-0', 'm', encodeEnvelope('r', 2, epoch, Date.now(), 'other-node', 'socket', asData(deepPack(20_000))));
    await sub.close();
    await eventually('interest dropped', () => node.gateway.stats.topics === 0);
    const late = await GatewayClient.connect(node.url);
    const reply = await late.sub('r', { seq: 1, epoch });
    assert.equal(reply.recovered, false, 'not replayed: the entry is not bounded like client data');
    const history = await fetch(`http://127.0.0.1:${node.port}/topics/r/history`);
    assert.equal(history.status, 200);
    assert.deepEqual(((await history.json()) as { messages: { s: number }[] }).messages.map((m) => m.s), [1]);
    assert.equal(got.length, 1);
    await late.close();
  });
});
