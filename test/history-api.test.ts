import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { CommandError, GatewayClient } from '../src/client/gateway-client';
import type { Gateway } from '../src/server/gateway';
import { BrokerServer, eventually, startNode } from './helpers/brokers';
import { startGateway, SINGLE_THREAD_ONLY } from './helpers/gateway';

const KEY = 'k3y';
const auth = { authorization: `Bearer ${KEY}` };

const publish = (http: string, topic: string, data: unknown) =>
  fetch(`${http}/publish`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify({ topic, data }) }).then((r) => r.json());

const getJson = async (url: string, headers: Record<string, string> = auth) => {
  const r = await fetch(url, { headers });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
};

const history = (c: GatewayClient, topic: string, extra: Record<string, unknown> = {}) => c.command({ op: 'history', topic, ...extra });

describe('history op and GET /topics/<topic>/history (memory broker)', () => {
  let g: Awaited<ReturnType<typeof startGateway>>;
  before(async () => {
    g = await startGateway(['--api-key', KEY, '--history-size', '5', '--jwt-secret', 'sekret']);
    // Published while nobody is subscribed: kept like any other message.
    for (let i = 1; i <= 8; i++) await publish(g.http, 'feed/a', { n: i });
  });
  after(() => g.stop());

  const token = (subscribe: string[]) => new SignJWT({ subscribe }).setProtectedHeader({ alg: 'HS256' }).setSubject('u1').sign(new TextEncoder().encode('sekret'));

  it('without since: the newest `limit` messages, oldest first, with the position (both codecs)', async () => {
    for (const codec of ['json', 'msgpack'] as const) {
      const c = await GatewayClient.connect(g.ws, { codec, token: await token(['feed/*']) });
      const r = await history(c, 'feed/a', { limit: 3 });
      assert.equal(r.seq, 8);
      assert.deepEqual(r.messages, [6, 7, 8].map((n) => ({ s: n, d: { n } })));
      const all = await history(c, 'feed/a');
      assert.deepEqual(all.messages?.map((m) => m.s), [4, 5, 6, 7, 8], 'history keeps 5');
      await c.close();
    }
  });

  it('with since: the first `limit` after it; another epoch is unrecoverable_position', async () => {
    const c = await GatewayClient.connect(g.ws, { token: await token(['*']) });
    const { epoch } = await history(c, 'feed/a', { limit: 1 });
    const after5 = await history(c, 'feed/a', { since: { seq: 5, epoch }, limit: 2 });
    assert.deepEqual(after5.messages?.map((m) => m.s), [6, 7]);
    await assert.rejects(history(c, 'feed/a', { since: { seq: 5, epoch: 'other' } }), (e: unknown) => e instanceof CommandError && e.code === 'unrecoverable_position');
    await assert.rejects(history(c, 'feed/a', { limit: 0 }), (e: unknown) => e instanceof CommandError && e.code === 'bad_request');
    await assert.rejects(history(c, 'feed/a', { limit: 1001 }), (e: unknown) => e instanceof CommandError && e.code === 'bad_request');
    await c.close();
  });

  it('is forbidden to connections that may not subscribe to the topic', async () => {
    const c = await GatewayClient.connect(g.ws, { token: await token(['news']) });
    await assert.rejects(history(c, 'feed/a'), (e: unknown) => e instanceof CommandError && e.code === 'forbidden');
    await c.close();
  });

  it('a topic never seen answers seq 0, no messages, and keeps that epoch', { skip: SINGLE_THREAD_ONLY }, async () => {
    const c = await GatewayClient.connect(g.ws, { token: await token(['*']) });
    const first = await history(c, 'never');
    assert.deepEqual({ seq: first.seq, messages: first.messages }, { seq: 0, messages: [] });
    assert.equal(g.gw.hub.get('never'), undefined, 'reading leaves no topic state behind');
    assert.equal((await history(c, 'never')).epoch, first.epoch);
    await c.close();
  });

  it('over HTTP with the API key, topics with / percent-encoded or not', async () => {
    const plain = await getJson(`${g.http}/topics/feed/a/history?limit=2`);
    assert.equal(plain.status, 200);
    assert.deepEqual(plain.body.messages, [7, 8].map((n) => ({ s: n, d: { n } })));
    const encoded = await getJson(`${g.http}/topics/feed%2Fa/history?since_seq=6&epoch=${plain.body.epoch as string}`);
    assert.deepEqual((encoded.body.messages as { s: number }[]).map((m) => m.s), [7, 8]);
    assert.equal((await getJson(`${g.http}/topics/feed/a/history`, {})).status, 401);
    assert.equal((await getJson(`${g.http}/topics/feed/a/history?since_seq=1`)).status, 400, 'since_seq without epoch');
    assert.equal((await getJson(`${g.http}/topics/feed/a/history?since_seq=1&epoch=zz`)).status, 409);
    assert.equal((await getJson(`${g.http}/topics/feed/a/history?limit=abc`)).status, 400);
    assert.equal((await getJson(`${g.http}/topics/bad%20topic/history`)).body.code, 'invalid_topic');
    assert.equal((await getJson(`${g.http}/topics/feed/a/nothing`)).status, 404);
  });
});

for (const kind of ['redis', 'nats'] as const) {
  describe(`history across two nodes (${kind})`, { timeout: 30_000 }, () => {
    let broker: BrokerServer;
    const nodes: { gateway: Gateway; url: string; port: number }[] = [];
    before(async () => {
      broker = await BrokerServer.start(kind);
      for (let i = 0; i < 2; i++) nodes.push(await startNode(broker.url, ['--history-size', '10']));
      await eventually('brokers up', () => nodes.every((n) => n.gateway.broker.ready()));
    });
    after(async () => {
      await Promise.all(nodes.map((n) => n.gateway.close()));
      await broker.stop();
    });
    const http = (i: number) => `http://127.0.0.1:${(nodes[i] as { port: number }).port}`;

    if (kind === 'redis') {
      it('every node answers from the Redis stream, equal on both', async () => {
        for (let i = 1; i <= 12; i++) await publish(http(0), 'h.r', i);
        const a = await getJson(`${http(0)}/topics/h.r/history?limit=3`, {});
        const b = await getJson(`${http(1)}/topics/h.r/history?limit=3`, {});
        assert.deepEqual(a.body, b.body);
        assert.deepEqual(b.body.messages, [10, 11, 12].map((n) => ({ s: n, d: n })));
        const c = await GatewayClient.connect((nodes[1] as { url: string }).url, { codec: 'msgpack' });
        const r = await history(c, 'h.r', { since: { seq: 9, epoch: b.body.epoch as string } });
        assert.deepEqual(r.messages?.map((m) => m.d), [10, 11, 12]);
        await assert.rejects(history(c, 'h.r', { since: { seq: 9, epoch: 'x' } }), (e: unknown) => e instanceof CommandError && e.code === 'unrecoverable_position');
        await c.close();
      });
    } else {
      it('each node answers from its own history (core NATS keeps no stream)', async () => {
        const holder = await GatewayClient.connect((nodes[1] as { url: string }).url);
        await holder.sub('h.n');
        for (let i = 1; i <= 3; i++) await publish(http(0), 'h.n', i);
        await eventually('B has them', async () => ((await getJson(`${http(1)}/topics/h.n/history`, {})).body.messages as unknown[]).length === 3);
        const a = await getJson(`${http(0)}/topics/h.n/history`, {});
        assert.deepEqual(a.body.messages, [1, 2, 3].map((n) => ({ s: n, d: n })), 'the publishing node kept its own');
        await holder.close();
      });
    }
  });
}
