import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GatewayClient } from '../src/client/gateway-client';
import type { Gateway } from '../src/server/gateway';
import { clusterOfTwo, eventually } from './helpers/brokers';
import { startGateway, SINGLE_THREAD_ONLY } from './helpers/gateway';

type Listing = { topics: { topic: string; subscribers: number }[]; cursor: string | null };

const list = async (http: string, query: string, headers: Record<string, string> = {}) => {
  const r = await fetch(`${http}/topics?${query}`, { headers });
  return { status: r.status, body: (await r.json()) as Listing };
};

describe('GET /topics (memory broker)', () => {
  it('lists active topics with subscriber counts by prefix, paginated by cursor', { skip: SINGLE_THREAD_ONLY }, async () => {
    const g = await startGateway(['--api-key', 'k']);
    const auth = { authorization: 'Bearer k' };
    const clients: GatewayClient[] = [];
    try {
      for (let i = 0; i < 3; i++) clients.push(await GatewayClient.connect(g.ws, { topics: ['chat.a', 'chat.b', ...(i === 0 ? ['news', 'chat.c'] : [])] }));
      await eventually('subscribed', () => g.gw.stats.subscriptions === 8);
      const all = await list(g.http, '', auth);
      assert.deepEqual(all.body, {
        topics: [
          { topic: 'chat.a', subscribers: 3 },
          { topic: 'chat.b', subscribers: 3 },
          { topic: 'chat.c', subscribers: 1 },
          { topic: 'news', subscribers: 1 },
        ],
        cursor: null,
      });
      const first = await list(g.http, 'prefix=chat.&limit=2', auth);
      assert.deepEqual(first.body.topics.map((t) => t.topic), ['chat.a', 'chat.b']);
      assert.equal(first.body.cursor, 'chat.b');
      const second = await list(g.http, `prefix=chat.&limit=2&cursor=${first.body.cursor}`, auth);
      assert.deepEqual(second.body, { topics: [{ topic: 'chat.c', subscribers: 1 }], cursor: null });
      await clients[0]?.unsub('news');
      assert.deepEqual((await list(g.http, 'prefix=news', auth)).body.topics, [], 'a topic without subscribers is not active');
      assert.equal((await list(g.http, '')).status, 401);
      assert.equal((await list(g.http, 'limit=0', auth)).status, 400);
      assert.equal((await list(g.http, `prefix=${'x'.repeat(200)}`, auth)).status, 400);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await g.stop();
    }
  });
});

for (const kind of ['redis', 'nats'] as const) {
  describe(`GET /topics across two nodes (${kind})`, { timeout: 30_000 }, () => {
    const nodes = clusterOfTwo(kind, ['--node-ttl', '1500', '--cluster-query-timeout', '3000']);
    const http = (i: number) => `http://127.0.0.1:${(nodes[i] as { port: number }).port}`;

    it('sums subscribers over the nodes, the same answer on each; a node gone drops out', async () => {
      const a = await GatewayClient.connect((nodes[0] as { url: string }).url, { topics: ['t.shared', 't.a'] });
      const b1 = await GatewayClient.connect((nodes[1] as { url: string }).url, { topics: ['t.shared', 't.b'] });
      const b2 = await GatewayClient.connect((nodes[1] as { url: string }).url, { topics: ['t.shared'] });
      await eventually('subscribed', () => (nodes[1] as { gateway: Gateway }).gateway.stats.subscriptions === 3);
      const expected = {
        topics: [
          { topic: 't.a', subscribers: 1 },
          { topic: 't.b', subscribers: 1 },
          { topic: 't.shared', subscribers: 3 },
        ],
        cursor: null,
      };
      const started = Date.now();
      assert.deepEqual((await list(http(0), 'prefix=t.')).body, expected);
      assert.ok(Date.now() - started < 1000, 'answered when every node replied, not at the timeout');
      assert.deepEqual((await list(http(1), 'prefix=t.')).body, expected);
      const page = await list(http(1), 'prefix=t.&limit=1&cursor=t.a');
      assert.deepEqual(page.body, { topics: [{ topic: 't.b', subscribers: 1 }], cursor: 't.b' });

      // Node B stops without a goodbye: after the node TTL its topics are gone from A's answer.
      await (nodes[1] as { gateway: Gateway }).gateway.close();
      await eventually('B forgotten', () => (nodes[0] as { gateway: Gateway }).gateway.bus.nodes === 1, 5000);
      assert.deepEqual((await list(http(0), 'prefix=t.')).body.topics, [
        { topic: 't.a', subscribers: 1 },
        { topic: 't.shared', subscribers: 1 },
      ]);
      await Promise.all([a.close(), b1.close(), b2.close()]);
    });
  });
}
