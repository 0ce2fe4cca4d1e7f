import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type SocketFactory, WsgateClient } from '../src/client/sdk';
import { wsPackageSocket } from '../src/client/sdk/socket';
import { type InProcessGateway, Publisher, Recorder, TcpProxy, firstBreak, startGateway, waitFor } from './sdk-harness';

// Fast reconnects keep the tests short; the bounds themselves are unit-tested in sdk-backoff.
const fast = { minDelayMs: 20, baseDelayMs: 50, maxDelayMs: 200, promptDelayMs: 20 };

describe('SDK recovery against a real gateway', () => {
  let gw: InProcessGateway;
  let proxy: TcpProxy;
  const clients: WsgateClient[] = [];
  const recorder = (topicsOverProxy = true, extra: Partial<ConstructorParameters<typeof Recorder>[0]> = {}) => {
    const r = new Recorder({ url: `ws://127.0.0.1:${topicsOverProxy ? proxy.port : gw.port}/ws`, backoff: fast, ...extra });
    clients.push(r.client);
    return r;
  };

  before(async () => {
    gw = await startGateway(['--history-size', '10000']);
    proxy = await TcpProxy.start(gw.port);
  });
  after(async () => {
    for (const c of clients) c.close();
    await proxy.close();
    await gw.stop();
  });

  for (const codec of ['json', 'msgpack'] as const) {
    test(`abrupt disconnects (${codec}): resubscribes with since, every message exactly once in order`, async () => {
      const topic = `abrupt-${codec}`;
      const pub = new Publisher(gw.gw, topic);
      const r = recorder(true, { codec });
      r.client.connect();
      await r.client.subscribe(topic);
      pub.start(2, 2);
      for (let cut = 1; cut <= 3; cut++) {
        await r.untilSeq(topic, pub.sent);
        proxy.cut();
        await r.untilOpen(cut + 1);
      }
      await r.untilSeq(topic, pub.sent);
      pub.stop();
      await r.untilSeq(topic, pub.sent);
      const seqs = r.seqs(topic);
      assert.equal(firstBreak(seqs, 1), -1, `sequence broken at index ${firstBreak(seqs, 1)}`);
      assert.equal(seqs.length, pub.sent);
      assert.deepEqual(r.gaps, []);
      assert.ok(r.states.filter((s) => s.state === 'reconnecting').length >= 3);
    });
  }

  test('de-duplicates by sequence: a transport that delivers every frame twice still yields each message once', async () => {
    const real = await wsPackageSocket();
    const doubling: SocketFactory = (url, sub, token, events) => real(url, sub, token, { ...events, frame: (d) => (events.frame(d), events.frame(d)) });
    const topic = 'dedup';
    const pub = new Publisher(gw.gw, topic);
    const r = recorder(false, { socket: doubling });
    r.client.connect();
    await r.client.subscribe(topic);
    for (let i = 0; i < 100; i++) pub.publish();
    await r.untilSeq(topic, 100);
    await new Promise((res) => setTimeout(res, 100));
    assert.deepEqual(r.seqs(topic), Array.from({ length: 100 }, (_, i) => i + 1));
  });

  test('a gap event when history cannot cover the missed range (--history-size 5)', async () => {
    const small = await startGateway(['--history-size', '5']);
    try {
      const topic = 'gappy';
      const pub = new Publisher(small.gw, topic);
      const r = new Recorder({ url: small.ws, backoff: fast });
      r.client.connect();
      await r.client.subscribe(topic);
      for (let i = 0; i < 3; i++) pub.publish();
      await r.untilSeq(topic, 3);
      r.client.close();
      for (let i = 0; i < 50; i++) pub.publish();
      r.client.connect();
      await waitFor(() => r.gaps.length === 1, 5000, 'gap event');
      const [gap] = r.gaps;
      assert.equal(gap?.topic, topic);
      assert.equal(gap?.reason, 'not_recovered');
      assert.equal(gap?.expected.seq, 3);
      assert.equal(gap?.server.seq, 53);
      assert.equal(gap?.server.epoch, gap?.expected.epoch);
      pub.publish();
      await r.untilSeq(topic, 54);
      assert.deepEqual(r.seqs(topic), [1, 2, 3, 54], 'nothing replayed after a gap, live delivery continues');
      // Within history: a short disconnect is recovered.
      r.client.close();
      for (let i = 0; i < 4; i++) pub.publish();
      r.client.connect();
      await r.untilSeq(topic, 58);
      assert.deepEqual(r.seqs(topic), [1, 2, 3, 54, 55, 56, 57, 58]);
      assert.equal(r.gaps.length, 1);
      r.client.close();
    } finally {
      await small.stop();
    }
  });

  test('ping liveness: a connection that goes silent is dropped and resumed', async () => {
    const topic = 'silent';
    const pub = new Publisher(gw.gw, topic);
    const r = recorder(true, { pingIntervalMs: 100, pingTimeoutMs: 200 });
    r.client.connect();
    await r.client.subscribe(topic);
    pub.publish();
    await r.untilSeq(topic, 1);
    proxy.stall(); // the TCP connection stays up, but nothing arrives any more
    pub.publish();
    pub.publish();
    await r.untilOpen(2, 3000);
    await r.untilSeq(topic, 3);
    assert.deepEqual(r.seqs(topic), [1, 2, 3]);
    assert.equal(r.states.find((s) => s.state === 'reconnecting')?.code, 1006);
  });
});
