import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Packr, Unpackr, pack } from 'msgpackr';
import Redis from 'ioredis';
import { connect as natsConnect } from 'nats';
import WebSocket from 'ws';
import { ENVELOPE_FIELDS, Envelope, FORMAT_JSON, MsgpackCursor, encodeEnvelope } from '../src/broker/envelope';
import { channelOf } from '../src/broker/redis-scripts';
import { Payload } from '../src/protocol/payload';
import type { Gateway } from '../src/server/gateway';
import { BrokerServer, clusterOfTwo, eventually, startNode } from './helpers/brokers';
import { APP } from './helpers/pusher-clients';

/**
 * The broker envelope carries data in the format it was published in (src/broker/envelope.ts): a
 * receiving node copies the bytes into the frames of subscribers of that format, so what they get is
 * byte for byte what a subscriber on the publishing node gets, and converts only for the other format.
 */

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

const TOPIC = 'fmt';
/** JSON data whose spacing, number forms and escapes any re-serialisation would change. */
const RAW_JSON = '{"n": 1.50,"e":"\\u00e9\\ud83d\\ude00 é","a":[1 , 2e3,true,null],"s":"x\\"y"}';
/** msgpack data in non-canonical widths (float32 1.5, uint16 5) that msgpackr would pack otherwise. */
const RAW_PACK = Buffer.from([0x82, 0xa1, 0x66, 0xca, 0x3f, 0xc0, 0x00, 0x00, 0xa1, 0x69, 0xcd, 0x00, 0x05]);

interface Recorder {
  readonly ws: WebSocket;
  readonly frames: Buffer[];
}

async function open(url: string, protocol?: string): Promise<Recorder> {
  const ws = protocol === undefined ? new WebSocket(url) : new WebSocket(url, protocol);
  const frames: Buffer[] = [];
  ws.on('message', (d: Buffer) => frames.push(Buffer.from(d)));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return { ws, frames };
}

/** The three kinds of subscriber on one node, all on TOPIC. */
async function subscribers(port: number): Promise<{ json: Recorder; pack: Recorder; pusher: Recorder }> {
  const json = await open(`ws://127.0.0.1:${port}/ws?topics=${TOPIC}`, 'wsgate.json');
  const packSub = await open(`ws://127.0.0.1:${port}/ws?topics=${TOPIC}`, 'wsgate.msgpack');
  const pusher = await open(`ws://127.0.0.1:${port}/app/${APP.key}?protocol=7&client=js&version=8.4.0`);
  await eventually('pusher connection established', () => pusher.frames.length === 1);
  pusher.ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: TOPIC } }));
  await eventually('pusher subscribed', () => pusher.frames.length === 2);
  pusher.frames.length = 0;
  return { json, pack: packSub, pusher };
}

/** Deliveries only (seq-bearing frames), as [seq, frame]. */
function deliveries(r: Recorder, msgpack: boolean): [number, Buffer][] {
  const out: [number, Buffer][] = [];
  for (const f of r.frames) {
    const m = (msgpack ? unpackr.unpack(f) : JSON.parse(f.toString('utf8'))) as { t?: string; s?: number };
    if (m.t === TOPIC && typeof m.s === 'number') out.push([m.s, f]);
  }
  return out;
}

/** Byte-for-byte equality, shown as text/hex (msgpackr's buffers carry extra properties deepEqual would compare). */
const sameBytes = (actual: Buffer, expected: Buffer, what: string): void => assert.equal(actual.toString('hex'), Buffer.from(expected).toString('hex'), what);

const jsonFrame = (seq: number, dataText: string): Buffer => Buffer.from(`{"t":"${TOPIC}","s":${seq},"d":${dataText}}`);
const packFrame = (seq: number, data: Uint8Array): Buffer =>
  Buffer.concat([Buffer.from([0x83]), pack('t'), pack(TOPIC), pack('s'), pack(seq), pack('d'), data]);

for (const kind of ['nats', 'redis'] as const) {
  describe(`envelope formats across two nodes via ${kind}`, { timeout: 60_000 }, () => {
    const nodes = clusterOfTwo(kind, ['--pusher-apps', `${APP.appId}:${APP.key}:${APP.secret}`]);
    const subs: Awaited<ReturnType<typeof subscribers>>[] = [];
    let jsonPub: Recorder;
    let packPub: Recorder;

    before(async () => {
      for (const n of nodes) subs.push(await subscribers(n.port));
      jsonPub = await open(nodes[0]?.url as string, 'wsgate.json');
      packPub = await open(nodes[0]?.url as string, 'wsgate.msgpack');
      // Broker interest takes effect asynchronously: publish until every subscriber on both nodes got one.
      const all = subs.flatMap((s) => [s.json, s.pack, s.pusher]);
      await eventually('every subscriber reachable', () => {
        jsonPub.ws.send(JSON.stringify({ op: 'pub', topic: TOPIC, data: 'prime' }));
        return all.every((r) => r.frames.length > 0);
      });
      await new Promise((r) => setTimeout(r, 200));
      for (const r of all) r.frames.length = 0;
    });
    after(() => {
      for (const r of [jsonPub, packPub, ...subs.flatMap((s) => [s.json, s.pack, s.pusher])]) r.ws.close();
    });

    it('a JSON and a msgpack publish reach JSON, msgpack and Pusher subscribers on the other node byte for byte as on the publishing node', async () => {
      jsonPub.ws.send(`{"op":"pub","topic":"${TOPIC}","data":${RAW_JSON}}`);
      await eventually('the JSON publish everywhere', () => subs.every((s) => s.json.frames.length === 1 && s.pack.frames.length === 1 && s.pusher.frames.length === 1));
      packPub.ws.send(Buffer.concat([Buffer.from([0x83]), pack('op'), pack('pub'), pack('topic'), pack(TOPIC), pack('data'), RAW_PACK]));
      await eventually('the msgpack publish everywhere', () => subs.every((s) => s.json.frames.length === 2 && s.pack.frames.length === 2 && s.pusher.frames.length === 2));

      const fromJson = JSON.parse(RAW_JSON) as unknown;
      const fromPack = unpackr.unpack(RAW_PACK) as unknown;
      for (const [i, s] of subs.entries()) {
        const where = i === 0 ? 'publishing node' : 'other node';
        const json = deliveries(s.json, false);
        const packed = deliveries(s.pack, true);
        assert.equal(json.length, 2, where);
        assert.equal(packed.length, 2, where);
        const [[js1, jf1], [js2, jf2]] = json as [[number, Buffer], [number, Buffer]];
        const [[ps1, pf1], [ps2, pf2]] = packed as [[number, Buffer], [number, Buffer]];
        // Same format: the published bytes, untouched.
        sameBytes(jf1, jsonFrame(js1, RAW_JSON), `${where}: JSON data to JSON subscribers`);
        sameBytes(pf2, packFrame(ps2, RAW_PACK), `${where}: msgpack data to msgpack subscribers`);
        // The other format: converted once, as a single node converts.
        sameBytes(pf1, packFrame(ps1, packr.pack(fromJson)), `${where}: JSON data to msgpack subscribers`);
        sameBytes(jf2, jsonFrame(js2, JSON.stringify(fromPack)), `${where}: msgpack data to JSON subscribers`);
      }
      // Pusher frames carry no sequence: identical strings on both nodes.
      assert.deepEqual(subs[1]?.pusher.frames.map(String), subs[0]?.pusher.frames.map(String));
      assert.deepEqual(JSON.parse(JSON.parse(String(subs[1]?.pusher.frames[0])).data as string), fromJson);
      assert.deepEqual(JSON.parse(JSON.parse(String(subs[1]?.pusher.frames[1])).data as string), fromPack);
    });

    if (kind === 'redis') {
      it('history served by the broker holds both formats, decoded', async () => {
        const res = await fetch(`http://127.0.0.1:${nodes[1]?.port}/topics/${TOPIC}/history?limit=2`);
        assert.equal(res.status, 200);
        const page = (await res.json()) as { messages: { d: unknown }[] };
        assert.deepEqual(
          page.messages.map((m) => m.d),
          [JSON.parse(RAW_JSON), unpackr.unpack(RAW_PACK)],
        );
      });
    }
  });
}

describe('envelope sequences', () => {
  it('round-trip through every msgpack uint width, read by our reader and by msgpackr alike', () => {
    const d = Buffer.from('"x"');
    const data = new Payload().setRaw(d, 0, d.length, true);
    for (const seq of [0, 1, 127, 128, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 12_345, Number.MAX_SAFE_INTEGER]) {
      const b = encodeEnvelope('t', seq, 'e', 1, 'n', 'socket', data);
      assert.equal(new Envelope().read(new MsgpackCursor().reset(b)).seq, seq);
      assert.equal((new Unpackr({ useRecords: false, int64AsType: 'number' }).unpack(b) as unknown[])[1], seq);
    }
  });
});

describe('malformed envelopes are counted and dropped, never delivered, never fatal', { timeout: 30_000 }, () => {
  for (const kind of ['nats', 'redis'] as const) {
    describe(kind, () => {
      let broker: BrokerServer;
      let node: { gateway: Gateway; url: string };
      before(async () => {
        broker = await BrokerServer.start(kind);
        node = await startNode(broker.url);
        await eventually('broker up', () => node.gateway.broker.ready());
      });
      after(async () => {
        await node.gateway.close();
        await broker.stop();
      });

      it('bad JSON data, an unknown format, a wrong field count and a truncated envelope', async () => {
        const sub = await open(`ws://127.0.0.1:${new URL(node.url).port}/ws?topics=x`, 'wsgate.json');
        const foreign = await sender(kind, broker.url);
        try {
          await rejectsBadOnes(foreign.send, sub, node.gateway);
        } finally {
          sub.ws.close();
          await foreign.close();
        }
      });
    });
  }
});

/** Sends each malformed envelope on the topic's channel; each is counted and none reaches the subscriber. */
async function rejectsBadOnes(send: (b: Buffer) => Promise<void>, sub: Recorder, gateway: Gateway): Promise<void> {
  const data = (text: string) => {
    const b = Buffer.from(text);
    return new Payload().setRaw(b, 0, b.length, true);
  };
  const env = (d: Payload) => encodeEnvelope('x', 0, '', Date.now(), 'other-node', 'socket', d);
  const good = env(data('"ok"'));
  const formatAt = good.length - 7; // …, format, 0xc4, 4, "ok"
  assert.equal(good[formatAt], FORMAT_JSON);
  const unknownFormat = Buffer.from(good);
  unknownFormat[formatAt] = 7;
  const sevenFields = Buffer.from(good);
  sevenFields[0] = 0x90 | (ENVELOPE_FIELDS - 1);
  // Wait until the node's interest is live: the good envelope arrives.
  await eventually('interest live', async () => {
    await send(good);
    return sub.frames.length > 0;
  });
  await new Promise((r) => setTimeout(r, 200));
  sub.frames.length = 0;
  const rejected = gateway.stats.brokerRejected;
  const deep = gateway.stats.tooDeep.broker;
  const bad = [
    env(data('['.repeat(20_000) + ']'.repeat(20_000))), // too deep
    env(data('{"a":')), // truncated JSON
    env(data('1 2')), // two values
    env(data(' 1')), // leading space: data is one value exactly
    env(new Payload().setRaw(Buffer.from([0x22, 0xff, 0x22]), 0, 3, true)), // not UTF-8
    unknownFormat,
    sevenFields,
    good.subarray(0, good.length - 1), // truncated envelope
  ];
  for (const b of bad) await send(b);
  await eventually('all rejected', () => gateway.stats.brokerRejected === rejected + bad.length);
  assert.equal(gateway.stats.tooDeep.broker, deep + 1);
  await send(good);
  await eventually('the next good one delivered', () => sub.frames.length === 1);
  assert.deepEqual(JSON.parse(String(sub.frames[0])).d, 'ok');
}

/** Puts raw bytes on topic x's broker channel, as a foreign producer would. */
async function sender(kind: 'nats' | 'redis', url: string): Promise<{ send: (b: Buffer) => Promise<void>; close: () => Promise<void> }> {
  if (kind === 'nats') {
    const nc = await natsConnect({ servers: url });
    return {
      send: async (b) => {
        nc.publish('wsgate.t.x', b);
        await nc.flush();
      },
      close: () => nc.close(),
    };
  }
  const r = new Redis(url);
  return {
    send: async (b) => {
      await r.publish(channelOf('x'), b);
    },
    close: async () => r.disconnect(),
  };
}
