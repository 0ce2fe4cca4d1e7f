import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { GatewayClient } from '../src/client/gateway-client';
import { AppBackend, type Received, json } from './helpers/app-backend';
import { RawClient, TEST_WORKERS, type TestGateway, metric, sleep, startGateway, waitFor } from './helpers/gateway';

const SECRET = 'webhook-secret-for-tests';

interface Event {
  name: string;
  id: string;
  topic?: string;
  client?: string;
  user?: string;
  code?: number;
  seq?: number;
  data?: unknown;
}

/** Checks the signature the way an application must (HMAC of the raw body), then returns the events. */
function verified(r: Received): Event[] {
  const expected = `sha256=${createHmac('sha256', SECRET).update(r.raw).digest('hex')}`;
  assert.equal(r.headers['x-wsgate-signature'], expected, 'signature');
  const body = r.body as { time_ms: number; events: Event[] };
  assert.ok(Math.abs(body.time_ms - Date.now()) < 60_000, 'time_ms');
  return body.events;
}

const publish = (http: string, topic: string, data: unknown) =>
  fetch(`${http}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic, data }) });

describe('webhooks (one node)', () => {
  let app: AppBackend;
  let g: TestGateway;
  const events = (): Event[] => app.at('/hooks').flatMap(verified);
  const named = (name: string, topic?: string) => events().filter((e) => e.name === name && (topic === undefined || e.topic === topic));

  before(async () => {
    app = await AppBackend.start();
    app.on('/hooks', (_r, res) => json(res, 200, {}));
    app.on('/connect', (r, res) => json(res, 200, { user: (r.body as { query: { user?: string } }).query.user }));
    g = await startGateway([
      '--webhook-url', `${app.url}/hooks`, '--webhook-secret', SECRET, '--webhook-delay', '300',
      '--topics', JSON.stringify([{ match: 'chat.*', webhookPublish: true }, { match: 'lobby.*', presence: true }]), '--client-publish', '--connect-proxy-url', `${app.url}/connect`,
    ]);
  });
  after(async () => {
    await g.stop();
    await app.stop();
  });

  it('topic_occupied on the first subscriber, topic_vacated after the delay, signed', async () => {
    const a = await GatewayClient.connect(g.ws);
    const b = await GatewayClient.connect(g.ws);
    await a.sub('room1');
    await b.sub('room1');
    await waitFor(() => named('topic_occupied', 'room1').length === 1, 2000, 'occupied');
    await a.unsub('room1');
    await b.unsub('room1');
    const left = Date.now();
    await waitFor(() => named('topic_vacated', 'room1').length === 1, 3000, 'vacated');
    assert.ok(Date.now() - left >= 280, 'vacated waits the delay');
    assert.equal(named('topic_occupied', 'room1').length, 1);
    await a.close();
    await b.close();
  });

  it('a topic occupied again within the delay sends nothing', async () => {
    const a = await GatewayClient.connect(g.ws);
    await a.sub('room2');
    await waitFor(() => named('topic_occupied', 'room2').length === 1, 2000, 'occupied');
    await a.unsub('room2');
    await sleep(100);
    await a.sub('room2');
    await sleep(600);
    assert.equal(named('topic_vacated', 'room2').length, 0);
    assert.equal(named('topic_occupied', 'room2').length, 1);
    await a.close();
    await waitFor(() => named('topic_vacated', 'room2').length === 1, 3000, 'vacated after the close');
  });

  it('disconnect with user, client and close code; client_publish for chosen topics; batched', async () => {
    const before = app.at('/hooks').length;
    const c = await RawClient.open(`${g.ws}?user=ann`);
    c.ws.send(JSON.stringify({ op: 'pub', topic: 'chat.x', data: { text: 'hi' }, id: 1 }));
    c.ws.send(JSON.stringify({ op: 'pub', topic: 'news', data: 'not sent', id: 2 }));
    await c.received(2);
    c.ws.close(4001, 'bye');
    await c.closed();
    await waitFor(() => named('disconnect').some((e) => e.user === 'ann'), 2000, 'disconnect');
    const pub = named('client_publish');
    assert.equal(pub.length, 1);
    assert.deepEqual({ ...pub[0], id: undefined, client: undefined }, { name: 'client_publish', id: undefined, client: undefined, user: 'ann', topic: 'chat.x', seq: 1, data: { text: 'hi' } });
    const disc = named('disconnect').find((e) => e.user === 'ann');
    assert.equal(disc?.code, 4001);
    assert.equal(disc?.client, pub[0]?.client, 'one client id for both events');
    // Many events at once leave in few POSTs.
    const clients = await Promise.all(Array.from({ length: 30 }, () => RawClient.open(g.ws)));
    for (const x of clients) x.close();
    await waitFor(() => named('disconnect').length >= 31, 3000, '30 disconnects');
    assert.ok(app.at('/hooks').length - before <= 6, `batched: ${app.at('/hooks').length - before} POSTs`);
    assert.equal(new Set(events().map((e) => e.id)).size, events().length, 'event ids are unique');
  });

  it('retries after 500s and delivers in order', async () => {
    let failures = 2;
    app.on('/hooks', (_r, res) => (failures-- > 0 ? json(res, 500, {}) : json(res, 200, {})));
    const retriesBefore = await metric(g.http, 'wsgate_webhook_retries_total');
    const a = await GatewayClient.connect(g.ws);
    await a.sub('room3');
    await a.unsub('room3');
    await waitFor(() => named('topic_vacated', 'room3').length >= 1, 5000, 'vacated after retries');
    assert.equal(await metric(g.http, 'wsgate_webhook_retries_total'), retriesBefore + 2);
    const room3 = events().filter((e) => e.topic === 'room3');
    assert.deepEqual([...new Set(room3.map((e) => e.name))], ['topic_occupied', 'topic_vacated'], 'per-topic order');
    app.on('/hooks', (_r, res) => json(res, 200, {}));
    await a.close();
  });

  it('join on the first subscription of a member to a presence topic to a presence topic, leave after the delay, nothing for a quick return', async () => {
    const members = (name: string, topic: string) => named(name, topic);
    const a1 = await GatewayClient.connect(`${g.ws}?user=ann`);
    const a2 = await GatewayClient.connect(`${g.ws}?user=ann`);
    await a1.sub('lobby.1');
    await a2.sub('lobby.1');
    await waitFor(() => members('join', 'lobby.1').length === 1, 2000, 'join');
    const join = members('join', 'lobby.1')[0];
    assert.equal(join?.user, 'ann');
    assert.match(String(join?.client), /^[\w-]+\.\d+$/);
    await a1.unsub('lobby.1');
    await sleep(500);
    assert.equal(members('leave', 'lobby.1').length, 0, 'ann is still there through a2');
    await a2.unsub('lobby.1');
    await sleep(100);
    await a2.sub('lobby.1');
    await sleep(500);
    assert.equal(members('leave', 'lobby.1').length, 0, 'back within the delay: no leave');
    assert.equal(members('join', 'lobby.1').length, 1, 'and no second join');
    await a2.close();
    await waitFor(() => members('leave', 'lobby.1').length === 1, 2000, 'leave after the close and the delay');
    assert.equal(members('leave', 'lobby.1')[0]?.user, 'ann');
    assert.equal(members('join', 'room1').length + members('leave', 'room1').length, 0, 'topics without presence send no join/leave');
    await a1.close();
  });

  it('a 4xx is not retried: the batch is given up and counted', async () => {
    app.on('/hooks', (_r, res) => json(res, 401, { reason: 'bad signature' }));
    const failed = await metric(g.http, 'wsgate_webhook_events_total{result="failed"}');
    const retries = await metric(g.http, 'wsgate_webhook_retries_total');
    const a = await GatewayClient.connect(g.ws);
    await a.sub('room4');
    const room4Posts = () => app.at('/hooks').filter((r) => (r.body as { events: Event[] }).events.some((e) => e.topic === 'room4')).length;
    await waitFor(async () => room4Posts() === 1 && (await metric(g.http, 'wsgate_webhook_events_total{result="failed"}')) > failed, 3000, 'given up');
    await sleep(500);
    assert.equal(room4Posts(), 1, 'one POST, no retry');
    assert.equal(await metric(g.http, 'wsgate_webhook_retries_total'), retries);
    app.on('/hooks', (_r, res) => json(res, 200, {}));
    await a.close();
  });
});

describe('webhooks: a stuck application', () => {
  it('overflow is dropped and counted; fan-out goes on', async () => {
    const app = await AppBackend.start();
    const held: ServerResponse[] = [];
    app.on('/hooks', (_r, res) => void held.push(res));
    const g = await startGateway(['--webhook-url', `${app.url}/hooks`, '--webhook-secret', SECRET, '--webhook-max-queue', '5', '--proxy-timeout', '5000']);
    try {
      const sub = await GatewayClient.connect(g.ws, { topics: ['live'] });
      const got: unknown[] = [];
      sub.onDelivery = (d) => got.push(d.d);
      await waitFor(() => held.length === 1, 2000, 'first webhook POST');
      const clients = await Promise.all(Array.from({ length: 20 }, () => RawClient.open(g.ws)));
      for (const c of clients) c.close();
      await waitFor(async () => (await metric(g.http, 'wsgate_connections')) === 1, 3000, 'closes');
      // The queue holds 5 including the batch in flight (the occupied event): 4 disconnects wait, 16 are
      // dropped. With workers each has its own queue of 5 (connections are handed out in turn: every
      // worker gets more than 5 of the 21).
      assert.equal(await metric(g.http, 'wsgate_webhook_events_total{result="dropped"}'), 20 - (5 * TEST_WORKERS - 1));
      assert.equal(await metric(g.http, 'wsgate_webhook_queue'), 5 * TEST_WORKERS);
      const started = Date.now();
      for (let i = 0; i < 100; i++) await publish(g.http, 'live', i);
      await waitFor(() => got.length === 100, 3000, 'deliveries');
      assert.ok(Date.now() - started < 3000);
      await sub.close();
    } finally {
      for (const res of held) res.destroy();
      await g.stop();
      await app.stop();
    }
  });
});
