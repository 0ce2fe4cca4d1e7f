import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Packr, Unpackr } from 'msgpackr';
import WebSocket from 'ws';
import { type SocketFactory, WsgateClient } from '../src/client/sdk';
import { wsPackageSocket } from '../src/client/sdk/socket';
import { ownerOf } from '../src/broker/in-process-broker';
import { DeltaFrameEncoder } from '../src/protocol/delta-frame';
import { clusterOfTwo, eventually } from './helpers/brokers';
import { type Codec, RawSubscriber } from './helpers/delta-client';
import { metric, spawnGateway, startGateway } from './helpers/gateway';

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

const RULES = ['--topics', JSON.stringify([{ match: 'state.*', delta: true }])];
const FLAGS = ['--client-publish', '--max-commands-per-second', '0', '--history-size', '5000', ...RULES];

type Doc = Record<string, unknown>;

// A state document: ~60 fields of numbers, text with multi-byte characters (so literal runs of a delta
// cut UTF-8 sequences), nested objects and arrays; a few change per publish.
// -0 has no JSON form (it reads back as 0).
const finite = fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => (x === 0 ? 0 : x));
const value = fc.oneof(
  fc.integer(),
  finite,
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.boolean(),
  fc.constant(null),
  fc.record({ px: finite, note: fc.string({ unit: 'grapheme-composite', maxLength: 12 }) }),
  fc.array(fc.integer({ min: -1000, max: 1000 }), { maxLength: 8 }),
);
const mutation = fc.array(fc.tuple(fc.nat({ max: 79 }), fc.option(value, { freq: 8 })), { minLength: 1, maxLength: 4 });

function initialDoc(): Doc {
  const doc: Doc = {};
  for (let i = 0; i < 60; i++) doc[`field_${i}`] = i % 3 === 0 ? `valeur ${i} – été ✓ 東京 ${'x'.repeat(i)}` : i % 3 === 1 ? { px: i * 1.25, qty: i, tags: ['a', 'b'] } : i * 1000.5;
  return doc;
}

function mutate(doc: Doc, changes: readonly [number, unknown][]): void {
  for (const [k, v] of changes) {
    if (v === null && k % 2 === 0) delete doc[`field_${k}`];
    else doc[`field_${k}`] = v;
  }
}

/** Publishes from a socket of `codec` (JSON pub frames carry JSON.stringify(doc) as the data bytes). */
class Publisher {
  private constructor(
    readonly ws: WebSocket,
    readonly codec: Codec,
  ) {}

  static async connect(url: string, codec: Codec): Promise<Publisher> {
    const ws = new WebSocket(url, codec === 'json' ? 'wsgate.json' : 'wsgate.msgpack');
    await once(ws, 'open');
    return new Publisher(ws, codec);
  }

  pub(topic: string, data: unknown): void {
    this.ws.send(this.codec === 'json' ? `{"op":"pub","topic":"${topic}","data":${JSON.stringify(data)}}` : packr.pack({ op: 'pub', topic, data }));
  }

  close(): void {
    this.ws.close();
  }
}

/** Publishes `docs` in order, pausing every 100 until `until` has seen them (bounded in-flight bytes). */
async function publishAll(pub: Publisher, topic: string, docs: readonly Doc[], until: RawSubscriber, firstSeq: number): Promise<void> {
  for (let i = 0; i < docs.length; i++) {
    pub.pub(topic, docs[i]);
    if (i % 100 === 99 || i === docs.length - 1) await eventually(`delivery ${firstSeq + i}`, () => until.data.has(firstSeq + i), 20_000);
  }
}

/** The state after each of `steps` mutations of a fresh document (copies). */
function states(steps: readonly (readonly [number, unknown][])[]): Doc[] {
  const doc = initialDoc();
  return steps.map((m) => {
    mutate(doc, m);
    return structuredClone(doc);
  });
}

/** Every delivery of `delta` equals the plain subscriber's bytes (same codec), and every delivery arrived. */
function assertSameBytes(delta: RawSubscriber, plain: RawSubscriber, seqs: readonly number[]): void {
  assert.equal(delta.broken, 0, 'no delta off the chain');
  for (const s of seqs) {
    const got = delta.data.get(s);
    const want = plain.data.get(s);
    assert.ok(got !== undefined && want !== undefined, `delivery ${s} (${delta.codec})`);
    assert.ok(got.equals(want), `delivery ${s} (${delta.codec}) reconstructed byte for byte`);
  }
}

describe('delta frames', () => {
  it('carry any delta byte exactly: JSON as a Latin-1 string, msgpack as bin', () => {
    const enc = new DeltaFrameEncoder();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.integer({ min: 1, max: 2 ** 40 }), (bytes, seq) => {
        const json = JSON.parse(Buffer.from(enc.json('state.a', seq, bytes)).toString('utf8')) as { t: string; s: number; delta: boolean; d: string };
        assert.deepEqual({ t: json.t, s: json.s, delta: json.delta }, { t: 'state.a', s: seq, delta: true });
        assert.ok(Buffer.from(json.d, 'latin1').equals(Buffer.from(bytes)));
        const pack = unpackr.unpack(enc.msgpack('state.a', seq, bytes)) as { t: string; s: number; delta: boolean; d: Uint8Array };
        assert.deepEqual({ t: pack.t, s: pack.s, delta: pack.delta }, { t: 'state.a', s: seq, delta: true });
        assert.ok(Buffer.from(pack.d).equals(Buffer.from(bytes)));
      }),
      { numRuns: 300 },
    );
  });
});

describe('delta delivery (one node)', () => {
  it('thousands of random mutations: fossil-delta clients rebuild every delivery byte for byte, JSON and msgpack, published from either codec', async () => {
    const g = await startGateway(FLAGS);
    try {
      let run = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(mutation, { minLength: 600, maxLength: 600 }), async (steps) => {
          const topic = `state.run${run}`;
          const pubCodec: Codec = run++ % 2 === 0 ? 'json' : 'msgpack';
          const subs = {
            json: await RawSubscriber.connect(g.ws, 'json'),
            msgpack: await RawSubscriber.connect(g.ws, 'msgpack'),
            plainJson: await RawSubscriber.connect(g.ws, 'json'),
            plainPack: await RawSubscriber.connect(g.ws, 'msgpack'),
          };
          await subs.json.sub(topic, 'fossil');
          await subs.msgpack.sub(topic, 'fossil');
          await subs.plainJson.sub(topic);
          await subs.plainPack.sub(topic);
          const pub = await Publisher.connect(g.ws, pubCodec);
          const docs = states(steps);
          await publishAll(pub, topic, docs, subs.msgpack, 1);
          await eventually('all delivered', () => Object.values(subs).every((s) => s.data.size === docs.length), 20_000);
          const seqs = docs.map((_, i) => i + 1);
          assertSameBytes(subs.json, subs.plainJson, seqs);
          assertSameBytes(subs.msgpack, subs.plainPack, seqs);
          for (const s of seqs) {
            const doc = docs[s - 1];
            assert.deepEqual(subs.msgpack.value(s), doc);
            if (pubCodec === 'json') assert.equal((subs.json.data.get(s) as Buffer).toString('utf8'), JSON.stringify(doc), 'JSON: the published text itself');
          }
          for (const s of [subs.json, subs.msgpack]) {
            // Seq 1 (first after subscribe) and every 10th are full: 61 of 600, the rest deltas.
            assert.equal(s.fulls, 61, `${s.codec}: full every 10th and the first`);
            assert.equal(s.deltas, 539);
            assert.ok(s.wireBytes < subs.plainPack.wireBytes * 0.5, `${s.codec}: deltas save bytes (${s.wireBytes} vs ${subs.plainPack.wireBytes})`);
          }
          for (const s of Object.values(subs)) s.close();
          pub.close();
        }),
        { numRuns: 4, endOnFailure: true },
      );
      // Once per publish and codec, not per subscriber: 4 runs × 539 deltas × 2 codecs.
      assert.equal(await metric(g.http, 'wsgate_delta_computed_total'), 4 * 539 * 2);
      assert.ok((await metric(g.http, 'wsgate_delta_bytes_saved_total')) > 0);
    } finally {
      await g.stop();
    }
  });

  it('a late subscriber gets one full delivery first; full again at every --delta-full-every; small data stays full', async () => {
    const g = await startGateway([...FLAGS, '--delta-full-every', '4', '--delta-min-bytes', '1000']);
    try {
      const topic = 'state.late';
      const pub = await Publisher.connect(g.ws, 'json');
      const early = await RawSubscriber.connect(g.ws, 'json');
      await early.sub(topic, 'fossil');
      const docs = states(fc.sample(mutation, { numRuns: 20, seed: 7 }));
      await publishAll(pub, topic, docs.slice(0, 5), early, 1);
      const late = await RawSubscriber.connect(g.ws, 'msgpack');
      await late.sub(topic, 'fossil');
      await publishAll(pub, topic, docs.slice(5, 12), late, 6);
      pub.pub(topic, { small: true }); // seq 13: under --delta-min-bytes
      pub.pub(topic, docs[12]); // 14: its delta against the small 13 is no smaller than the data itself
      await eventually('small ones', () => late.data.has(14) && early.data.has(14));
      const kinds = (s: RawSubscriber) => [...s.data.keys()];
      assert.deepEqual(kinds(late), [6, 7, 8, 9, 10, 11, 12, 13, 14]);
      assert.equal(early.fulls, 5 + 1, 'early: 1, 4, 8, 12, 13 and 14 (its base is under the minimum)');
      assert.equal(late.fulls, 5, 'late: 6, 8, 12, 13, 14');
      assert.equal(early.broken + late.broken, 0);
      assert.deepEqual(late.value(11), docs[10]);
      pub.close();
      early.close();
      late.close();
    } finally {
      await g.stop();
    }
  });

  it('with lastMessage: the latest message, then a full delivery, then deltas', async () => {
    const g = await startGateway(['--client-publish', '--max-commands-per-second', '0', '--topics', JSON.stringify([{ match: 'state.*', delta: true, lastMessage: true }])]);
    try {
      const pub = await Publisher.connect(g.ws, 'json');
      const docs = states(fc.sample(mutation, { numRuns: 6, seed: 5 }));
      const first = await RawSubscriber.connect(g.ws, 'msgpack');
      await first.sub('state.last', 'fossil');
      await publishAll(pub, 'state.last', docs.slice(0, 3), first, 1);
      const late = await RawSubscriber.connect(g.ws, 'json');
      await late.sub('state.last', 'fossil');
      await eventually('the latest message', () => late.data.has(3));
      await publishAll(pub, 'state.last', docs.slice(3), late, 4);
      assert.deepEqual([late.fulls, late.deltas, late.broken], [2, 2, 0], 'latest (3) and first live (4) full, then 5 and 6 as deltas');
      for (let s = 3; s <= 6; s++) assert.deepEqual(late.value(s), docs[s - 1]);
      for (const c of [pub, first, late]) c.close();
    } finally {
      await g.stop();
    }
  });

  it('refuses delta on a topic without the rule (delta_disabled) and unknown delta types (bad_request), on both codecs', async () => {
    const g = await startGateway(FLAGS);
    try {
      for (const codec of ['json', 'msgpack'] as const) {
        const c = await RawSubscriber.connect(g.ws, codec);
        assert.equal((await c.sub('plain.topic', 'fossil')).code, 'delta_disabled');
        assert.equal((await c.sub('state.x', 'xdelta')).code, 'bad_request');
        assert.equal((await c.sub('state.x', true)).code, 'bad_request');
        assert.equal((await c.sub('state.x', 'fossil')).op, 'ok');
        c.close();
      }
      assert.equal(await metric(g.http, 'wsgate_errors_total{code="delta_disabled"}'), 2);
    } finally {
      await g.stop();
    }
  });
});

describe('SDK subscribe(topic, { delta: true })', () => {
  for (const codec of ['json', 'msgpack'] as const) {
    it(`${codec}: applies deltas, resubscribes after a missed one (gap) and after a reconnect (recovery); every message exact, in order`, async () => {
      const g = await startGateway(FLAGS);
      const counts = { deltas: 0 };
      const base = await wsPackageSocket();
      let cut: (() => void) | null = null;
      const socket: SocketFactory = (url, subprotocol, token, events) => {
        const handle = base(url, subprotocol, token, {
          ...events,
          frame: (data) => {
            const isDelta = typeof data === 'string' ? data.includes('"delta":true') : Buffer.from(data).includes(Buffer.from('\xa5delta\xc3', 'latin1'));
            if (isDelta && ++counts.deltas === 25) return; // a missed delivery: the chain breaks
            events.frame(data);
          },
        });
        cut = () => handle.abort();
        return handle;
      };
      const client = new WsgateClient({ url: g.ws, codec, socket, backoff: { minDelayMs: 20, baseDelayMs: 50, maxDelayMs: 200, promptDelayMs: 20 } });
      const got: { seq: number; data: unknown }[] = [];
      const gaps: unknown[] = [];
      client.on('message', (m) => got.push({ seq: m.seq, data: m.data }));
      client.on('gap', (e) => gaps.push(e));
      try {
        client.connect();
        const topic = `state.sdk-${codec}`;
        await client.subscribe(topic, { delta: true });
        const pub = await Publisher.connect(g.ws, codec);
        const docs = states(fc.sample(mutation, { numRuns: 300, seed: 42 }));
        for (let i = 0; i < docs.length; i++) {
          pub.pub(topic, docs[i]);
          if (i === 150) (cut as unknown as () => void)(); // a lost connection: resumes with since
          if (i % 50 === 49) await eventually(`sdk got ${i + 1}`, () => got.length === i + 1, 20_000);
        }
        await eventually('all', () => got.length === docs.length, 20_000);
        assert.deepEqual(gaps, [], 'history filled both breaks');
        assert.deepEqual(got.map((m) => m.seq), docs.map((_, i) => i + 1));
        for (let i = 0; i < docs.length; i++) assert.deepEqual(got[i]?.data, docs[i], `message ${i + 1}`);
        assert.ok(counts.deltas > 200, `most deliveries were deltas (${counts.deltas})`);
        pub.close();
      } finally {
        client.close();
        await g.stop();
      }
    });
  }
});

describe('SDK delta subscription without history', () => {
  it('a missed delta that history cannot fill: a gap event, then a full delivery and exact data again', async () => {
    const g = await startGateway(['--client-publish', '--max-commands-per-second', '0', '--history-size', '0', ...RULES]);
    const base = await wsPackageSocket();
    let deltas = 0;
    const socket: SocketFactory = (url, subprotocol, token, events) =>
      base(url, subprotocol, token, {
        ...events,
        frame: (data) => {
          if (typeof data === 'string' && data.includes('"delta":true') && ++deltas === 5) return;
          events.frame(data);
        },
      });
    const client = new WsgateClient({ url: g.ws, socket });
    const got = new Map<number, unknown>();
    const gaps: { reason: string }[] = [];
    client.on('message', (m) => got.set(m.seq, m.data));
    client.on('gap', (e) => gaps.push(e));
    try {
      client.connect();
      await client.subscribe('state.nohistory', { delta: true });
      const pub = await Publisher.connect(g.ws, 'json');
      const docs = states(fc.sample(mutation, { numRuns: 40, seed: 9 }));
      for (let i = 0; i < docs.length; i++) {
        pub.pub('state.nohistory', docs[i]);
        await eventually(`published ${i + 1}`, () => (g.gw.hub.get('state.nohistory')?.seq ?? 0) === i + 1);
      }
      await eventually('the last message', () => got.has(docs.length), 20_000);
      assert.equal(gaps.length, 1);
      assert.equal(gaps[0]?.reason, 'not_recovered');
      assert.ok(got.size < docs.length, 'the missed messages are missing');
      for (const [seq, data] of got) assert.deepEqual(data, docs[seq - 1], `message ${seq}`);
      pub.close();
    } finally {
      client.close();
      await g.stop();
    }
  });
});

describe('delta delivery across nodes (redis)', { timeout: 60_000 }, () => {
  const nodes = clusterOfTwo('redis', FLAGS);

  it('subscribers on the other node rebuild every message byte for byte; both nodes frame the same bytes', async () => {
    const [a, b] = nodes as unknown as [{ url: string }, { url: string }];
    const topic = 'state.cluster';
    const onB = { json: await RawSubscriber.connect(b.url, 'json'), msgpack: await RawSubscriber.connect(b.url, 'msgpack') };
    const plainB = { json: await RawSubscriber.connect(b.url, 'json'), msgpack: await RawSubscriber.connect(b.url, 'msgpack') };
    const plainA = { json: await RawSubscriber.connect(a.url, 'json'), msgpack: await RawSubscriber.connect(a.url, 'msgpack') };
    for (const s of [onB.json, onB.msgpack]) await s.sub(topic, 'fossil');
    for (const s of [plainB.json, plainB.msgpack, plainA.json, plainA.msgpack]) await s.sub(topic);
    const pub = await Publisher.connect(a.url, 'json');
    const docs = states(fc.sample(mutation, { numRuns: 400, seed: 3 }));
    await publishAll(pub, topic, docs, onB.msgpack, 1);
    const all = [onB.json, onB.msgpack, plainB.json, plainB.msgpack, plainA.json, plainA.msgpack];
    await eventually('all delivered', () => all.every((s) => s.data.size === docs.length), 20_000);
    const seqs = docs.map((_, i) => i + 1);
    assertSameBytes(onB.json, plainB.json, seqs);
    assertSameBytes(onB.msgpack, plainB.msgpack, seqs);
    assertSameBytes(onB.json, plainA.json, seqs);
    assertSameBytes(onB.msgpack, plainA.msgpack, seqs);
    assert.ok(onB.json.deltas > 300 && onB.msgpack.deltas > 300);
    for (const s of all) s.close();
    pub.close();
  });
});

/** Open connections per worker (`wsgate_worker_connections{worker}`), from one scrape. */
async function workerConnections(http: string, workers: number): Promise<number[]> {
  const text = await (await fetch(`${http}/metrics`)).text();
  return Array.from({ length: workers }, (_, w) => Number(text.match(new RegExp(`^wsgate_worker_connections\\{worker="${w}"\\} (\\d+)$`, 'm'))?.[1] ?? NaN));
}

describe('delta delivery across workers (--workers 2)', { timeout: 60_000 }, () => {
  it('publisher on one worker, delta subscribers on the other (live, late, resumed with since there): rebuilt byte for byte, JSON and msgpack, whichever worker owns the topic', async () => {
    // Worker threads load the gateway's modules: slow to start on a loaded 2-core machine.
    const g = await spawnGateway(['--workers', '2', ...FLAGS], {}, 40_000);
    const url = `ws://127.0.0.1:${g.port}/ws`;
    const http = `http://127.0.0.1:${g.port}`;
    const opened: { close(): void }[] = [];
    /** Opens connections until one lands on worker `w` (the acceptor alternates); the others stay open, unused. */
    const on = async <T extends { close(): void }>(w: number, open: () => Promise<T>): Promise<T> => {
      for (let attempt = 0; attempt < 4; attempt++) {
        const before = await workerConnections(http, 2);
        const c = await open();
        opened.push(c);
        let now = before;
        await eventually('the connection counted', async () => (now = await workerConnections(http, 2)).reduce((a, b) => a + b) === before.reduce((a, b) => a + b) + 1);
        if ((now[w] as number) > (before[w] as number)) return c;
      }
      throw new Error(`no connection landed on worker ${w}`);
    };
    const topicOwnedBy = (w: number, tag: string): string => {
      for (let i = 0; ; i++) if (ownerOf(`state.${tag}${i}`, 2) === w) return `state.${tag}${i}`;
    };
    try {
      // The publisher is on worker 0; one topic is numbered there, the other on worker 1 (the publish
      // goes there to be numbered and comes back): both ways across the boundary.
      const cases = [
        { topic: topicOwnedBy(0, 'own'), pubCodec: 'json' as Codec, seed: 11 },
        { topic: topicOwnedBy(1, 'far'), pubCodec: 'msgpack' as Codec, seed: 12 },
      ];
      for (const { topic, pubCodec, seed } of cases) {
        const pub = await on(0, () => Publisher.connect(url, pubCodec));
        const sub = (w: number, codec: Codec) => on(w, () => RawSubscriber.connect(url, codec));
        const delta = { json: await sub(1, 'json'), msgpack: await sub(1, 'msgpack') };
        const plain1 = { json: await sub(1, 'json'), msgpack: await sub(1, 'msgpack') };
        const plain0 = { json: await sub(0, 'json'), msgpack: await sub(0, 'msgpack') };
        const resumeCodec: Codec = pubCodec === 'json' ? 'msgpack' : 'json';
        const first = await sub(0, resumeCodec); // resumes on worker 1 later
        for (const s of [delta.json, delta.msgpack, first]) assert.equal((await s.sub(topic, 'fossil')).op, 'ok');
        for (const s of [plain1.json, plain1.msgpack, plain0.json, plain0.msgpack]) assert.equal((await s.sub(topic)).op, 'ok');
        const docs = states(fc.sample(mutation, { numRuns: 150, seed }));
        await publishAll(pub, topic, docs.slice(0, 50), first, 1);
        await eventually('50 on worker 1', () => delta.msgpack.data.has(50));
        const epoch = (first.replies.find((r) => r.op === 'ok') as Record<string, unknown>).epoch;
        first.close();
        await publishAll(pub, topic, docs.slice(50, 80), delta.msgpack, 51); // missed by `first`
        const resumed = await sub(1, resumeCodec);
        const since = await resumed.sub(topic, 'fossil', { since: { seq: 50, epoch } });
        assert.equal(since.recovered, true, JSON.stringify(since));
        const late = await sub(1, pubCodec);
        assert.equal((await late.sub(topic, 'fossil')).op, 'ok');
        await eventually('the replay', () => resumed.data.has(80));
        await publishAll(pub, topic, docs.slice(80), late, 81);
        const all = [delta.json, delta.msgpack, plain1.json, plain1.msgpack, plain0.json, plain0.msgpack];
        await eventually('all delivered', () => all.every((s) => s.data.size === docs.length) && resumed.data.has(150), 20_000);
        const seqs = (from: number) => docs.slice(from - 1).map((_, i) => from + i);
        for (const codec of ['json', 'msgpack'] as const) {
          assertSameBytes(delta[codec], plain1[codec], seqs(1));
          assertSameBytes(delta[codec], plain0[codec], seqs(1));
          assert.ok(delta[codec].deltas >= 120, `${topic} ${codec}: mostly deltas (${delta[codec].deltas})`);
        }
        const plain = (c: Codec) => (c === 'json' ? plain0.json : plain0.msgpack);
        assertSameBytes(first, plain(resumeCodec), seqs(1).slice(0, 50));
        assert.deepEqual([...resumed.data.keys()], seqs(51), 'resumed: 51..150, each once');
        assertSameBytes(resumed, plain(resumeCodec), seqs(51));
        assert.deepEqual([...late.data.keys()], seqs(81), 'late: from 81');
        assertSameBytes(late, plain(pubCodec), seqs(81));
        assert.ok(resumed.deltas >= 50 && late.deltas >= 50 && first.deltas >= 40, `deltas after joining (${first.deltas}, ${resumed.deltas}, ${late.deltas})`);
        for (const s of seqs(1)) assert.deepEqual(delta.msgpack.value(s), docs[s - 1], `${topic} message ${s}`);
        for (const c of opened.splice(0)) c.close();
      }
    } finally {
      for (const c of opened) c.close();
      await g.stop();
    }
  });
});
