import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { GatewayClient } from '../src/client/gateway-client';
import type { Gateway } from '../src/server/gateway';
import { BrokerServer, eventually, sleep, startNode } from './helpers/brokers';
import { RawClient, type TestGateway, metric, startGateway, SINGLE_THREAD_ONLY } from './helpers/gateway';

interface Result {
  topic: string;
  seq?: number;
  code?: string;
  reason?: string;
}

async function post(http: string, body: unknown): Promise<{ status: number; results: Result[]; code?: string; reason?: string }> {
  const res = await fetch(`${http}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, ...((await res.json()) as { results: Result[] }) };
}

describe('idempotent publishes on one node', () => {
  let g: TestGateway;
  before(async () => (g = await startGateway(['--client-publish', '--idempotency-max-keys', '50'])));
  after(() => g.stop());

  it('POST /publish: a repeated key publishes nothing and answers the first seq', { skip: SINGLE_THREAD_ONLY }, async () => {
    const sub = await GatewayClient.connect(g.ws, { topics: ['orders'] });
    const got: unknown[] = [];
    sub.onDelivery = (d) => got.push(d.d);
    await eventually('subscribed', () => g.gw.hub.get('orders')?.subscribers === 1);
    const first = await post(g.http, { topic: 'orders', data: 'a', idempotencyKey: 'k1' });
    const again = await post(g.http, { topic: 'orders', data: 'a (retry)', idempotencyKey: 'k1' });
    assert.equal(again.results[0]?.seq, first.results[0]?.seq);
    const batch = await post(g.http, [
      { topic: 'orders', data: 'b', idempotencyKey: 'k2' },
      { topic: 'orders', data: 'b twice in one batch', idempotencyKey: 'k2' },
      { topic: 'orders', data: 'no key' },
      { topic: 'other', data: 'same key, other topic', idempotencyKey: 'k1' },
    ]);
    assert.deepEqual(batch.results.map((r) => r.seq), [2, 2, 3, 1]);
    await eventually('deliveries', () => got.length === 3);
    await sleep(50);
    assert.deepEqual(got, ['a', 'b', 'no key']);
    assert.equal(await metric(g.http, 'wsgate_idempotent_repeats_total'), 2);
    const bad = await post(g.http, { topic: 'orders', data: 1, idempotencyKey: 'x'.repeat(129) });
    assert.equal(bad.status, 400);
    assert.match(String(bad.reason), /idempotencyKey/);
    await sub.close();
  });

  it('client pub: a repeated key is acknowledged with the first seq and delivered once', { skip: SINGLE_THREAD_ONLY }, async () => {
    const sub = await GatewayClient.connect(g.ws, { topics: ['chat'] });
    const got: unknown[] = [];
    sub.onDelivery = (d) => got.push(d.d);
    await eventually('subscribed', () => g.gw.hub.get('chat')?.subscribers === 1);
    const c = await RawClient.open(g.ws);
    c.ws.send(JSON.stringify({ op: 'pub', topic: 'chat', data: 'hello', id: 1, idempotencyKey: 'msg-1' }));
    c.ws.send(JSON.stringify({ op: 'pub', topic: 'chat', data: 'hello', id: 2, idempotencyKey: 'msg-1' }));
    c.ws.send(JSON.stringify({ op: 'pub', topic: 'chat', data: 'x', id: 3, idempotencyKey: 42 }));
    await c.received(3);
    assert.deepEqual(c.json(), [
      { op: 'ok', id: 1, seq: 1 },
      { op: 'ok', id: 2, seq: 1 },
      { op: 'err', id: 3, code: 'bad_request', reason: 'idempotencyKey must be a string of 1..128 characters' },
    ]);
    await sleep(50);
    assert.deepEqual(got, ['hello']);
    c.close();
    await sub.close();
  });

  it('holds at most --idempotency-max-keys keys: the oldest are forgotten first, counted', async () => {
    for (let i = 0; i < 60; i++) await post(g.http, { topic: 'bulk', data: i, idempotencyKey: `bulk-${i}` });
    assert.equal(await metric(g.http, 'wsgate_idempotency_keys'), 50);
    assert.ok((await metric(g.http, 'wsgate_idempotency_evicted_total')) >= 10);
    const forgotten = await post(g.http, { topic: 'bulk', data: 'again', idempotencyKey: 'bulk-0' });
    assert.equal(forgotten.results[0]?.seq, 61, 'forgotten: published again');
    const kept = await post(g.http, { topic: 'bulk', data: 'again', idempotencyKey: 'bulk-59' });
    assert.equal(kept.results[0]?.seq, 60);
  });
});

describe('idempotent publishes across two nodes (Redis)', { timeout: 60_000 }, () => {
  let broker: BrokerServer;
  const nodes: { gateway: Gateway; port: number; url: string }[] = [];
  before(async () => {
    broker = await BrokerServer.start('redis');
    for (let i = 0; i < 2; i++) nodes.push(await startNode(broker.url));
    await eventually('brokers up', () => nodes.every((n) => n.gateway.broker.ready()));
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.gateway.close()));
    await broker.stop();
  });

  it('a key used on one node is a repeat on the other, also when both arrive at once', async () => {
    const http = nodes.map((n) => `http://127.0.0.1:${n.port}`);
    const sub = await GatewayClient.connect(nodes[1]!.url);
    const got: unknown[] = [];
    sub.onDelivery = (d) => got.push(d.d);
    await sub.sub('pay');
    const a = await post(http[0]!, { topic: 'pay', data: 'charge', idempotencyKey: 'p1' });
    const b = await post(http[1]!, { topic: 'pay', data: 'charge', idempotencyKey: 'p1' });
    assert.equal(b.results[0]?.seq, a.results[0]?.seq);
    const both = await Promise.all(http.map((h) => post(h, { topic: 'pay', data: 'refund', idempotencyKey: 'p2' })));
    assert.equal(both[0]?.results[0]?.seq, both[1]?.results[0]?.seq);
    await eventually('deliveries', () => got.length === 2);
    await sleep(200);
    assert.deepEqual(got, ['charge', 'refund']);
    await sub.close();
  });
});
