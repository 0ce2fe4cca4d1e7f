import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { unpack } from 'msgpackr';
import { GatewayClient } from '../src/client/gateway-client';
import { DeliveryEncoder } from '../src/protocol/delivery';
import { ByteRing } from '../src/pubsub/byte-ring';
import { HistoryBudget, TopicHistory } from '../src/pubsub/history';
import { RawClient, metric, startGateway, waitFor, SINGLE_THREAD_ONLY } from './helpers/gateway';

const frame = (s: string) => ({ jsonFrame: Buffer.from(s), packFrame: null });

describe('ByteRing', () => {
  it('wraps to the start and frees oldest first', () => {
    const r = new ByteRing(10);
    assert.equal(r.reserve(4), 0);
    r.commit(0, 4);
    assert.equal(r.reserve(4), 4);
    r.commit(4, 4);
    assert.equal(r.reserve(4), -1, 'tail has 2 bytes, head is at 0');
    r.release(4);
    assert.equal(r.reserve(4), 0, 'wraps once the first block is freed');
    r.commit(0, 4);
    assert.equal(r.reserve(1), -1, 'wrapped tail meets head');
    r.release(0);
    r.release(0);
    assert.equal(r.reserve(10), 0, 'empty ring resets');
  });
});

describe('TopicHistory bounds', () => {
  it('keeps at most `size` entries, oldest evicted, replay in order', () => {
    const h = new TopicHistory({ size: 3, ttlMs: 60_000 }, new HistoryBudget(1 << 20));
    for (let s = 1; s <= 5; s++) h.append(s, Date.now(), frame(`m${s}`));
    assert.equal(h.count, 3);
    assert.equal(h.oldestSeq, 3);
    const seen: string[] = [];
    h.forEachAfter(3, (seq, f) => seen.push(`${seq}:${Buffer.from(f.jsonFrame as Uint8Array).toString()}`));
    assert.deepEqual(seen, ['4:m4', '5:m5']);
    assert.equal(h.covers(2, 5), true);
    assert.equal(h.covers(1, 5), false, 'seq 2 is gone');
    assert.equal(h.covers(6, 5), false, 'a position ahead of the stream is not recoverable');
  });

  it('evicts by age', () => {
    const h = new TopicHistory({ size: 10, ttlMs: 1000 }, new HistoryBudget(1 << 20));
    h.append(1, 0, frame('old'));
    h.append(2, 1500, frame('new'));
    h.evictExpired(2000);
    assert.equal(h.count, 1);
    assert.equal(h.oldestSeq, 2);
  });

  it('stays within the global byte budget, shared across topics, and gives bytes back on clear', () => {
    const budget = new HistoryBudget(16 * 1024);
    const a = new TopicHistory({ size: 1000, ttlMs: 60_000 }, budget);
    const b = new TopicHistory({ size: 1000, ttlMs: 60_000 }, budget);
    const big = 'x'.repeat(500);
    for (let s = 1; s <= 200; s++) {
      a.append(s, Date.now(), frame(big));
      b.append(s, Date.now(), frame(big));
      assert.ok(budget.used <= budget.max, `used ${budget.used}`);
    }
    assert.ok(a.count > 0 && a.count < 200, `a keeps what fits: ${a.count}`);
    assert.equal(a.oldestSeq, 200 - a.count + 1, 'a keeps the newest, contiguous');
    a.clear();
    b.clear();
    assert.equal(budget.used, 0);
    assert.equal(budget.entries, 0);
  });

  it('keeps frames intact across ring growth and wrap-around (many sizes)', () => {
    const h = new TopicHistory({ size: 50, ttlMs: 60_000 }, new HistoryBudget(1 << 20));
    for (let s = 1; s <= 2000; s++) h.append(s, Date.now(), { jsonFrame: Buffer.from(`j${s}:${'y'.repeat(s % 97)}`), packFrame: Buffer.from(`p${s}`) });
    const seen: number[] = [];
    h.forEachAfter(0, (seq, f) => {
      assert.equal(Buffer.from(f.jsonFrame as Uint8Array).toString(), `j${seq}:${'y'.repeat(seq % 97)}`);
      assert.equal(Buffer.from(f.packFrame as Uint8Array).toString(), `p${seq}`);
      seen.push(seq);
    });
    assert.deepEqual(seen, Array.from({ length: 50 }, (_, i) => 1951 + i));
  });
});

describe('DeliveryEncoder msgpack envelope', () => {
  it('decodes like a msgpack map for every seq width and topic length', () => {
    const enc = new DeliveryEncoder(64);
    const data = Buffer.from([0x92, 0x01, 0xa1, 0x78]); // [1, "x"]
    for (const seq of [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1]) {
      for (const topic of ['t', 'x'.repeat(31), 'y'.repeat(32), 'z'.repeat(255)]) {
        assert.deepEqual(unpack(enc.msgpack(topic, seq, data)), { t: topic, s: seq, d: [1, 'x'] });
      }
    }
    assert.deepEqual(JSON.parse(Buffer.from(enc.json('a.b', 7, '{"k":"é"}')).toString()), { t: 'a.b', s: 7, d: { k: 'é' } });
  });
});

describe('recovery with since', () => {
  it('replays exactly what was missed, then continues live with no gap or duplicate (both codecs)', async () => {
    const g = await startGateway(['--client-publish', '--history-size', '1000']);
    try {
      const pub = await GatewayClient.connect(g.ws);
      for (const codec of ['json', 'msgpack'] as const) {
        const topic = `r-${codec}`;
        const a = await GatewayClient.connect(g.ws, { codec });
        const seen: number[] = [];
        a.onDelivery = (d) => seen.push(d.s);
        const first = await a.sub(topic);
        for (let i = 0; i < 10; i++) await pub.pub(topic, i);
        await waitFor(() => seen.length === 10);
        await a.close();
        for (let i = 10; i < 25; i++) await pub.pub(topic, i);
        const b = await GatewayClient.connect(g.ws, { codec });
        const resumed: { s: number; d: unknown }[] = [];
        b.onDelivery = (d) => resumed.push(d);
        const reply = await b.sub(topic, { seq: 10, epoch: first.epoch as string });
        assert.equal(reply.recovered, true);
        assert.equal(reply.seq, 25);
        await pub.pub(topic, 25);
        await waitFor(() => resumed.length === 16);
        assert.deepEqual(resumed.map((d) => d.s), Array.from({ length: 16 }, (_, i) => 11 + i));
        assert.deepEqual(resumed.map((d) => d.d), Array.from({ length: 16 }, (_, i) => 10 + i));
        await b.close();
      }
      assert.equal(await metric(g.http, 'wsgate_recoveries_total{outcome="recovered"}'), 2);
      assert.equal(await metric(g.http, 'wsgate_replayed_messages_total'), 30);
      assert.ok((await metric(g.http, 'wsgate_history_entries')) >= 52);
      await pub.close();
    } finally {
      await g.stop();
    }
  });

  it('replays frames encoded for the other codec when nobody of that codec was subscribed', async () => {
    const g = await startGateway(['--client-publish']);
    try {
      const j = await GatewayClient.connect(g.ws, { topics: ['conv'] });
      const r = await j.sub('conv');
      await j.pub('conv', { bin: 'no', n: 1 });
      const m = await GatewayClient.connect(g.ws, { codec: 'msgpack' });
      const got: unknown[] = [];
      m.onDelivery = (d) => got.push(d);
      assert.equal((await m.sub('conv', { seq: 0, epoch: r.epoch as string })).recovered, true);
      await waitFor(() => got.length === 1);
      assert.deepEqual(got[0], { t: 'conv', s: 1, d: { bin: 'no', n: 1 } });
      await j.close();
      await m.close();
    } finally {
      await g.stop();
    }
  });

  it('a sub with since on a topic the connection already holds answers recovered and replays from there', async () => {
    const g = await startGateway(['--client-publish', '--history-size', '5']);
    try {
      const c = await GatewayClient.connect(g.ws, { topics: ['held'] });
      const got: number[] = [];
      c.onDelivery = (d) => got.push(d.s);
      const r = await c.sub('held');
      assert.equal(r.recovered, undefined, 'no since: no recovered');
      for (let i = 0; i < 8; i++) await c.pub('held', i);
      await waitFor(() => got.length === 8);
      const again = await c.sub('held', { seq: 6, epoch: r.epoch as string });
      assert.deepEqual({ recovered: again.recovered, seq: again.seq }, { recovered: true, seq: 8 });
      await waitFor(() => got.length === 10);
      assert.deepEqual(got.slice(8), [7, 8], 'replayed after 6; the repeats carry their s');
      const tooOld = await c.sub('held', { seq: 1, epoch: r.epoch as string });
      assert.equal(tooOld.recovered, false);
      await c.pub('held', 8);
      await waitFor(() => got.length === 11);
      assert.deepEqual(got.slice(10), [9], 'still subscribed once: nothing replayed for the too-old position');
      await c.close();
    } finally {
      await g.stop();
    }
  });

  it('too old or another epoch: recovered false with the current position, nothing replayed', async () => {
    const g = await startGateway(['--client-publish', '--history-size', '5']);
    try {
      const c = await GatewayClient.connect(g.ws, { topics: ['old'] });
      const r = await c.sub('old');
      for (let i = 0; i < 20; i++) await c.pub('old', i);
      const d = await GatewayClient.connect(g.ws);
      const got: unknown[] = [];
      d.onDelivery = (x) => got.push(x);
      const tooOld = await d.sub('old', { seq: 3, epoch: r.epoch as string });
      assert.deepEqual({ recovered: tooOld.recovered, seq: tooOld.seq, epoch: tooOld.epoch }, { recovered: false, seq: 20, epoch: r.epoch });
      await d.unsub('old');
      const wrong = await d.sub('old', { seq: 18, epoch: 'not-the-epoch' });
      assert.equal(wrong.recovered, false);
      assert.equal(wrong.epoch, r.epoch);
      await d.unsub('old');
      const ok = await d.sub('old', { seq: 16, epoch: r.epoch as string });
      assert.equal(ok.recovered, true, 'the last 5 are still there');
      await waitFor(() => got.length === 4);
      assert.equal(await metric(g.http, 'wsgate_recoveries_total{outcome="gap"}'), 2);
      await c.close();
      await d.close();
    } finally {
      await g.stop();
    }
  });

  it('recovers losslessly after a slow-consumer disconnect under continuous publishing', { skip: SINGLE_THREAD_ONLY }, async () => {
    const g = await startGateway(['--client-publish', '--max-backpressure', '16384', '--history-size', '5000', '--max-body', '8388608']);
    try {
      const slow = await RawClient.open(`${g.ws}?topics=live`);
      const publisher = setInterval(() => {
        const batch = Array.from({ length: 20 }, () => ({ topic: 'live', data: 'p'.repeat(4000) }));
        fetch(`${g.http}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(batch) }).catch(() => {});
      }, 5);
      (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
      await waitFor(async () => (await metric(g.http, 'wsgate_slow_consumer_disconnects_total')) === 1, 10000);
      (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.resume();
      assert.equal(await slow.closed(10000), 4008);
      const before = slow.json().filter((m) => typeof m.t === 'string').map((m) => m.s as number);
      const last = before.length === 0 ? 0 : (before[before.length - 1] as number);
      assert.deepEqual(before, Array.from({ length: before.length }, (_, i) => i + 1), 'what arrived before the cut is contiguous');
      const epoch = (g.gw.hub.get('live')?.epoch ?? '') as string;
      const again = await GatewayClient.connect(g.ws);
      const after: number[] = [];
      again.onDelivery = (d) => after.push(d.s);
      const r = await again.sub('live', { seq: last, epoch });
      assert.equal(r.recovered, true);
      await new Promise((res) => setTimeout(res, 200));
      clearInterval(publisher);
      const total = await waitForQuiet(() => g.gw.hub.get('live')?.seq ?? 0);
      await waitFor(() => after.length === total - last, 10000, 'every missed and new message');
      assert.deepEqual(after, Array.from({ length: total - last }, (_, i) => last + 1 + i), 'exactly once, in order');
      await again.close();
    } finally {
      await g.stop();
    }
  });
});

/** Waits until `read` stops changing (in-flight publishes settled) and returns its value. */
async function waitForQuiet(read: () => number): Promise<number> {
  let v = read();
  for (;;) {
    await new Promise((r) => setTimeout(r, 300));
    const n = read();
    if (n === v) return n;
    v = n;
  }
}
