import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { GatewayClient } from '../src/client/gateway-client';
import { RawClient, type TestGateway, metric, startGateway, waitFor } from './helpers/gateway';

/** Stops reading from the socket, so the server's send buffer for it fills up. */
const stopReading = (c: RawClient) => (c.ws as unknown as { _socket: Socket })._socket.pause();
const resumeReading = (c: RawClient) => (c.ws as unknown as { _socket: Socket })._socket.resume();

/**
 * Publishes 16 KiB messages over HTTP in batches of 50 until `done` (the kernel's loopback buffers
 * absorb a varying amount first), at most `max`; returns how many were published.
 */
async function flood(g: TestGateway, topic: string, done: () => Promise<boolean>, max = 4000): Promise<number> {
  const batch = JSON.stringify(Array.from({ length: 50 }, () => ({ topic, data: 'x'.repeat(16 * 1024) })));
  let n = 0;
  while (n < max && !(await done())) {
    const res = await fetch(`${g.http}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: batch });
    assert.equal(res.status, 200);
    n += 50;
  }
  return n;
}

describe('slow consumers', () => {
  it('policy disconnect: a client that stops reading is closed with 4008 and counted; others unaffected', async () => {
    const g = await startGateway(['--max-backpressure', '65536', '--max-body', '2097152']);
    try {
      const slow = await RawClient.open(`${g.ws}?topics=firehose`);
      const healthy = await GatewayClient.connect(g.ws, { topics: ['firehose'] });
      let healthyGot = 0;
      healthy.onDelivery = () => healthyGot++;
      stopReading(slow);
      const published = await flood(g, 'firehose', async () => (await metric(g.http, 'wsgate_slow_consumer_disconnects_total')) === 1);
      assert.equal(await metric(g.http, 'wsgate_slow_consumer_disconnects_total'), 1, 'slow consumer disconnect');
      assert.ok((await metric(g.http, 'wsgate_slow_consumer_drops_total')) >= 1);
      resumeReading(slow);
      assert.equal(await slow.closed(10000), 4008);
      assert.equal(slow.closeReason, 'slow consumer');
      await waitFor(() => healthyGot === published, 20000, 'healthy client gets everything');
      assert.equal(await metric(g.http, 'wsgate_disconnects_total{reason="slow_consumer"}'), 1);
      await healthy.close();
    } finally {
      await g.stop();
    }
  });

  it('policy drop: messages are skipped, counted, and the client is told how many', async () => {
    const g = await startGateway(['--max-backpressure', '65536', '--max-body', '2097152', '--slow-consumer', 'drop']);
    try {
      const slow = await RawClient.open(`${g.ws}?topics=firehose`);
      stopReading(slow);
      const published = await flood(g, 'firehose', async () => (await metric(g.http, 'wsgate_slow_consumer_drops_total')) > 0);
      const drops = await metric(g.http, 'wsgate_slow_consumer_drops_total');
      assert.ok(drops > 0, 'drops counted');
      resumeReading(slow);
      await waitFor(() => slow.json().some((m) => m.op === 'dropped'), 10000, 'dropped notice');
      const deliveries = slow.json().filter((m) => typeof m.t === 'string');
      const notices = slow.json().filter((m) => m.op === 'dropped');
      const noticed = notices.reduce((n, m) => n + (m.n as number), 0);
      assert.equal(deliveries.length + noticed, published, 'every message was either delivered or reported dropped');
      assert.equal(noticed, drops);
      assert.equal(slow.closeCode, null, 'still connected');
      const seqs = deliveries.map((m) => m.s as number);
      assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'what arrives is in order');
      slow.close();
    } finally {
      await g.stop();
    }
  });
});
