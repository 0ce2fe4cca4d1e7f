import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GatewayClient } from '../src/client/gateway-client';
import { HeapAllocationMeter } from '../src/metrics/heap-allocation';
import { FixedHistogram } from '../src/metrics/histogram';
import { metric, startGateway, waitFor } from './helpers/gateway';

describe('heap allocation meter', () => {
  it('moves by at least the bytes a known allocation made, across GCs', () => {
    const meter = new HeapAllocationMeter();
    const before = meter.sample();
    const ARRAYS = 200;
    const LEN = 100_000; // 200 × 100k doubles ≈ 160 MB of JS heap, far more than survives a GC
    let keep = 0;
    for (let i = 0; i < ARRAYS; i++) {
      const a = new Array<number>(LEN).fill(i + 0.5);
      keep += a.length;
    }
    const allocated = meter.sample() - before;
    meter.stop();
    assert.equal(keep, ARRAYS * LEN);
    assert.ok(allocated >= ARRAYS * LEN * 8, `allocated ${allocated} >= ${ARRAYS * LEN * 8}`);
    assert.ok(allocated < ARRAYS * LEN * 8 * 3, `allocated ${allocated} is not wildly over`);
  });
});

describe('fixed histogram', () => {
  it('counts into the first bound that holds the value', () => {
    const h = new FixedHistogram([1, 2, 5]);
    for (const v of [0.5, 1, 1.5, 3, 9]) h.observe(v);
    assert.deepEqual(h.cumulative(), [2, 3, 4]);
    assert.equal(h.count, 5);
    assert.equal(h.sum, 15);
  });
});

describe('/metrics values move with traffic', () => {
  it('counts connections, commands, publishes, deliveries, bytes and the fan-out histogram', async () => {
    const g = await startGateway(['--client-publish']);
    try {
      const subs = await Promise.all([1, 2, 3].map(() => GatewayClient.connect(g.ws, { topics: ['m'] })));
      let got = 0;
      for (const s of subs) s.onDelivery = () => got++;
      assert.equal(await metric(g.http, 'wsgate_connections'), 3);
      assert.equal(await metric(g.http, 'wsgate_subscriptions'), 3);
      assert.equal(await metric(g.http, 'wsgate_topics'), 1);
      await (subs[0] as GatewayClient).pub('m', 'hello');
      await (subs[0] as GatewayClient).ping();
      await fetch(`${g.http}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"topic":"m","data":1}' });
      await waitFor(() => got === 6);
      assert.equal(await metric(g.http, 'wsgate_publishes_total{source="socket"}'), 1);
      assert.equal(await metric(g.http, 'wsgate_publishes_total{source="http"}'), 1);
      assert.equal(await metric(g.http, 'wsgate_deliveries_total'), 6);
      assert.equal(await metric(g.http, 'wsgate_messages_received_total{op="pub"}'), 1);
      assert.equal(await metric(g.http, 'wsgate_messages_received_total{op="ping"}'), 1);
      const frame = Buffer.byteLength('{"t":"m","s":1,"d":"hello"}') + Buffer.byteLength('{"t":"m","s":2,"d":1}');
      const replies = Buffer.byteLength('{"op":"ok","id":1,"seq":1}') + Buffer.byteLength('{"op":"ok","id":2}');
      assert.equal(await metric(g.http, 'wsgate_sent_bytes_total'), frame * 3 + replies);
      assert.ok((await metric(g.http, 'wsgate_received_bytes_total')) > 0);
      assert.ok((await metric(g.http, 'wsgate_heap_allocated_bytes_total')) > 0);
      assert.equal(await metric(g.http, 'wsgate_ready'), 1);
      assert.equal(await metric(g.http, 'wsgate_broker_up'), 1);
      // One publish in 16 has its fan-out timed (publishStart): 32 socket pubs and no other frame time two.
      const timed = await metric(g.http, 'wsgate_publish_fanout_duration_seconds_count');
      for (let i = 0; i < 32; i++) await (subs[0] as GatewayClient).pub('m', i);
      assert.equal((await metric(g.http, 'wsgate_publish_fanout_duration_seconds_count')) - timed, 2);
      assert.ok((await metric(g.http, 'wsgate_publish_fanout_duration_seconds_sum')) > 0);
      assert.ok((await metric(g.http, 'nodejs_eventloop_lag_seconds')) >= 0, 'Node default metrics present');
      await Promise.all(subs.map((s) => s.close()));
      await waitFor(async () => (await metric(g.http, 'wsgate_connections')) === 0);
      assert.equal(await metric(g.http, 'wsgate_subscriptions'), 0);
      assert.equal(await metric(g.http, 'wsgate_disconnects_total{reason="client"}'), 3);
    } finally {
      await g.stop();
    }
  });
});
