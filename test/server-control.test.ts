import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import type { Gateway } from '../src/server/gateway';
import { clusterOfTwo, eventually } from './helpers/brokers';
import { RawClient, metric, startGateway, SINGLE_THREAD_ONLY } from './helpers/gateway';

const SECRET = 'ctl-secret';
const KEY = 'ctl-key';

const token = (sub: string) => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).sign(new TextEncoder().encode(SECRET));

const post = async (http: string, path: string, body: unknown, key = KEY) => {
  const r = await fetch(`${http}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify(body) });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
};

const publish = (http: string, topic: string, data: unknown) => post(http, '/publish', { topic, data });

const open = async (ws: string, sub: string, topics = '') => RawClient.open(`${ws}?token=${await token(sub)}${topics === '' ? '' : `&topics=${topics}`}`);

/** The client's frames as `op:t` for notices and `d` for deliveries. */
const seen = (c: RawClient) => c.json().map((m) => (typeof m.op === 'string' ? `${m.op}:${String(m.t)}` : `d:${String(m.d)}`));

describe('server-side control (memory broker)', () => {
  let g: Awaited<ReturnType<typeof startGateway>>;
  before(async () => (g = await startGateway(['--jwt-secret', SECRET, '--api-key', KEY, '--topics', JSON.stringify([{ match: 'p.*', presence: true }])])));
  after(() => g.stop());

  it('POST /subscribe subscribes every connection of the user, with a notice before the deliveries', async () => {
    const a1 = await open(g.ws, 'u1');
    const a2 = await open(g.ws, 'u1');
    const other = await open(g.ws, 'u2');
    assert.deepEqual((await post(g.http, '/subscribe', { user: 'u1', topic: 'feed' })).body, { affected: 2 });
    assert.deepEqual((await post(g.http, '/subscribe', { user: 'u1', topic: 'feed' })).body, { affected: 0 }, 'already subscribed: nothing changes');
    await publish(g.http, 'feed', 'x');
    await a1.received(2);
    await a2.received(2);
    assert.deepEqual(seen(a1), ['subscribed:feed', 'd:x']);
    assert.deepEqual(seen(other), []);
    assert.deepEqual((await post(g.http, '/unsubscribe', { user: 'u1', topic: 'feed' })).body, { affected: 2 });
    await publish(g.http, 'feed', 'y');
    await a1.received(3);
    assert.deepEqual(seen(a1), ['subscribed:feed', 'd:x', 'unsubscribed:feed']);
    assert.equal(await metric(g.http, 'wsgate_server_api_calls_total{call="subscribe"}'), 2);
    for (const c of [a1, a2, other]) c.close();
  });

  it('POST /disconnect closes a user\'s connections (4001) or one client\'s, terminally when asked (4003)', { skip: SINGLE_THREAD_ONLY }, async () => {
    const a = await open(g.ws, 'u3', 'p.room');
    const b = await open(g.ws, 'u3');
    const c = await open(g.ws, 'u4', 'p.room');
    await eventually('present', () => g.gw.presence.registry.total('p.room') === 2);
    const list = await (await fetch(`${g.http}/topics/p.room/presence`, { headers: { authorization: `Bearer ${KEY}` } })).json() as { presence: { client: string; user: string }[] };
    const u4 = list.presence.find((e) => e.user === 'u4')?.client as string;
    assert.deepEqual((await post(g.http, '/disconnect', { client: u4, reconnect: false })).body, { affected: 1 });
    assert.equal(await c.closed(), 4003);
    assert.deepEqual((await post(g.http, '/disconnect', { user: 'u3' })).body, { affected: 2 });
    assert.equal(await a.closed(), 4001);
    assert.equal(await b.closed(), 4001);
    assert.equal(await metric(g.http, 'wsgate_disconnects_total{reason="server"}'), 3);
  });

  it('refuses a wrong key or body with the documented statuses', async () => {
    assert.equal((await post(g.http, '/disconnect', { user: 'x' }, 'wrong')).status, 401);
    assert.equal((await post(g.http, '/disconnect', { user: 'x', client: 'y' })).status, 400);
    assert.equal((await post(g.http, '/subscribe', { user: 'x' })).status, 400, 'no topic');
    assert.equal((await post(g.http, '/unsubscribe', { user: 'x', topic: 'bad topic' })).body.code, 'invalid_topic');
    assert.equal((await post(g.http, '/disconnect', { user: 'x', reconnect: 'yes' })).status, 400);
    assert.equal(await metric(g.http, 'wsgate_server_api_refused_total{call="disconnect"}'), 3);
  });
});

for (const kind of ['redis', 'nats'] as const) {
  describe(`server-side control across two nodes (${kind})`, { timeout: 30_000 }, () => {
    const nodes = clusterOfTwo(kind, ['--jwt-secret', SECRET, '--api-key', KEY]);
    const http = (i: number) => `http://127.0.0.1:${(nodes[i] as { port: number }).port}`;
    const ws = (i: number) => (nodes[i] as { url: string }).url;

    it('subscribe, unsubscribe and disconnect reach connections on the other node, counted across the cluster', async () => {
      const onA = await open(ws(0), 'v1');
      const onB = await open(ws(1), 'v1');
      assert.deepEqual((await post(http(0), '/subscribe', { user: 'v1', topic: 'xfeed' })).body, { affected: 2 });
      await eventually('B subscribed', () => (nodes[1] as { gateway: Gateway }).gateway.stats.subscriptions === 1);
      await publish(http(0), 'xfeed', 'hello');
      await onB.received(2);
      assert.deepEqual(seen(onB), ['subscribed:xfeed', 'd:hello']);
      assert.deepEqual((await post(http(1), '/unsubscribe', { user: 'v1', topic: 'xfeed' })).body, { affected: 2 });
      await onA.received(3);
      assert.deepEqual(seen(onA), ['subscribed:xfeed', 'd:hello', 'unsubscribed:xfeed']);
      assert.deepEqual((await post(http(1), '/disconnect', { user: 'v1' })).body, { affected: 2 });
      assert.equal(await onA.closed(), 4001);
      assert.equal(await onB.closed(), 4001);
    });
  });
}
