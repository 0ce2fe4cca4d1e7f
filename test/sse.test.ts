import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { SignJWT } from 'jose';
import { AppBackend, json } from './helpers/app-backend';
import { eventually } from './helpers/brokers';
import { type TestGateway, metric, startGateway } from './helpers/gateway';
import { delivered, watch } from './helpers/sse';

const SECRET = 'sse-secret';
const token = (sub: string, claims: Record<string, unknown> = {}) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).sign(new TextEncoder().encode(SECRET));

const publish = async (g: TestGateway, topic: string, data: unknown): Promise<number> => {
  const r = await fetch(`${g.http}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic, data }) });
  const body = (await r.json()) as { results: { seq: number }[] };
  return body.results[0]?.seq as number;
};

/** Status and body of a GET that is expected to be refused (the body is read to the end). */
const refusal = async (url: string, headers: Record<string, string> = {}) => {
  const r = await fetch(url, { headers });
  const body = r.status === 200 ? null : ((await r.json()) as { code: string });
  if (r.status === 200) await r.body?.cancel();
  return { status: r.status, code: body?.code };
};

describe('SSE door (eventsource npm package)', { timeout: 60_000 }, () => {
  let g: TestGateway;
  const rules = JSON.stringify([{ match: 'room.*', joinLeave: true }, { match: 'short.*', history: { size: 2, ttl: 600 } }]);
  before(async () => (g = await startGateway(['--api-insecure', '--history-size', '100', '--topics', rules, '--sse-heartbeat', '1000'])));
  after(() => g.stop());

  it('headers, one event per delivery with the JSON protocol object as data and a cursor for all topics as id', async () => {
    const r = await fetch(`${g.http}/sse?topics=a.1,b.1`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'text/event-stream');
    assert.equal(r.headers.get('cache-control'), 'no-cache');
    assert.equal(r.headers.get('x-accel-buffering'), 'no');
    await r.body?.cancel();

    const { es, events } = watch(`${g.http}/sse?topics=a.1,b.1`);
    await eventually('both subscribed', () => events.filter((e) => e.type === 'subscribed').length === 2);
    await publish(g, 'a.1', { n: 1 });
    await publish(g, 'b.1', 'two');
    await eventually('two deliveries', () => delivered(events).length === 2);
    es.close();
    const msgs = events.filter((e) => e.type === 'message');
    assert.deepEqual(msgs.map((e) => e.data), [{ t: 'a.1', s: 1, d: { n: 1 } }, { t: 'b.1', s: 1, d: 'two' }]);
    // The last id names a position in both topics.
    assert.match(msgs[1]?.id ?? '', /^[A-Za-z0-9_-]+\.1,[A-Za-z0-9_-]+\.1$/);
  });

  it('Last-Event-ID resumes every topic exactly: the missed messages once, in order, then live ones', async () => {
    const first = watch(`${g.http}/sse?topics=r.1,r.2`);
    await eventually('subscribed', () => first.events.filter((e) => e.type === 'subscribed').length === 2);
    await publish(g, 'r.1', 1);
    await eventually('first delivery', () => delivered(first.events).length === 1);
    first.es.close();
    const cursor = first.events.at(-1)?.id as string;
    for (let i = 0; i < 3; i++) {
      await publish(g, 'r.1', `x${i}`);
      await publish(g, 'r.2', `y${i}`);
    }
    const again = watch(`${g.http}/sse?topics=r.1,r.2`, { headers: { 'last-event-id': cursor } });
    await eventually('six missed', () => delivered(again.events).length === 6);
    await publish(g, 'r.2', 'live');
    await eventually('live one', () => delivered(again.events).length === 7);
    again.es.close();
    assert.deepEqual(delivered(again.events), ['r.1:2', 'r.1:3', 'r.1:4', 'r.2:1', 'r.2:2', 'r.2:3', 'r.2:4']);
    assert.deepEqual(
      again.events.filter((e) => e.type === 'subscribed').map((e) => (e.data as { recovered?: boolean }).recovered),
      [true, true],
    );
    // The same through the lastEventId query parameter.
    const byQuery = watch(`${g.http}/sse?topics=r.1,r.2&lastEventId=${encodeURIComponent(cursor)}`);
    await eventually('six missed again', () => delivered(byQuery.events).length === 7);
    byQuery.es.close();
  });

  it('a topic that cannot be resumed gets event: gap naming it before its live deliveries', async () => {
    const first = watch(`${g.http}/sse?topics=short.1,long.1`);
    await eventually('subscribed', () => first.events.filter((e) => e.type === 'subscribed').length === 2);
    const cursor = first.events.at(-1)?.id as string;
    first.es.close();
    for (let i = 0; i < 5; i++) await publish(g, 'short.1', i); // history keeps 2: 3 are lost
    await publish(g, 'long.1', 'kept');
    const again = watch(`${g.http}/sse?topics=short.1,long.1`, { headers: { 'last-event-id': cursor } });
    await eventually('gap and replay', () => again.events.some((e) => e.type === 'gap') && delivered(again.events).length === 1);
    await publish(g, 'short.1', 'live');
    await eventually('live', () => delivered(again.events).length === 2);
    again.es.close();
    const gap = again.events.find((e) => e.type === 'gap');
    assert.deepEqual(gap?.data, { t: 'short.1', seq: 5, epoch: (gap?.data as { epoch: string }).epoch });
    const order = again.events.filter((e) => e.type !== 'subscribed').map((e) => (e.type === 'message' ? `msg:${(e.data as { t: string }).t}` : `${e.type}:${(e.data as { t: string }).t}`));
    assert.deepEqual(order, ['gap:short.1', 'msg:long.1', 'msg:short.1']);
  });

  it('join and leave notices arrive as event: join / event: leave; metrics count SSE as protocol="sse"', async () => {
    const { es, events } = watch(`${g.http}/sse?topics=room.1`);
    await eventually('subscribed', () => events.some((e) => e.type === 'subscribed'));
    assert.equal(await metric(g.http, 'wsgate_protocol_connections{protocol="sse"}'), 1);
    assert.equal(await metric(g.http, 'wsgate_protocol_subscriptions{protocol="sse"}'), 1);
    const other = watch(`${g.http}/sse?topics=room.1`);
    await eventually('join', () => events.some((e) => e.type === 'join'));
    other.es.close();
    await eventually('leave', () => events.some((e) => e.type === 'leave'));
    es.close();
    await eventually('streams closed', async () => (await metric(g.http, 'wsgate_protocol_connections{protocol="sse"}')) === 0);
    assert.equal((events.find((e) => e.type === 'join')?.data as { t: string }).t, 'room.1');
  });

  it('sends a comment heartbeat every --sse-heartbeat ms and a retry: hint', async () => {
    const r = await fetch(`${g.http}/sse?topics=hb.1`);
    const reader = (r.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    const deadline = Date.now() + 5000;
    while (!text.includes('\n:\n') && Date.now() < deadline) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    assert.match(text, /^retry: \d+\n\n/);
    assert.ok(text.includes('\n:\n'), text);
  });

  it('malformed Last-Event-ID, too many topics and bad topics get 400 with a documented code', async () => {
    assert.deepEqual(await refusal(`${g.http}/sse?topics=a`, { 'last-event-id': 'not a cursor' }), { status: 400, code: 'bad_since' });
    assert.deepEqual(await refusal(`${g.http}/sse?topics=a&lastEventId=${'x.1,'.repeat(40)}`), { status: 400, code: 'bad_since' });
    const many = Array.from({ length: 33 }, (_, i) => `t${i}`).join(',');
    assert.deepEqual(await refusal(`${g.http}/sse?topics=${many}`), { status: 400, code: 'too_many_topics' });
    assert.deepEqual(await refusal(`${g.http}/sse?topics=bad%20topic`), { status: 400, code: 'invalid_topic' });
  });

  it('generated Last-Event-ID values: 200 or 400 bad_since, never anything else, and the node keeps serving', async () => {
    const entry = fc.oneof(fc.constant(''), fc.tuple(fc.stringMatching(/^[A-Za-z0-9_-]{1,70}$/), fc.stringMatching(/^[0-9a-z]{1,13}$/)).map(([e, s]) => `${e}.${s}`), fc.string({ maxLength: 20 }));
    const cursor = fc.oneof(fc.array(entry, { maxLength: 40 }).map((a) => a.join(',')), fc.string({ maxLength: 200 }), fc.string({ unit: 'grapheme', maxLength: 50 }));
    await fc.assert(
      fc.asyncProperty(cursor, async (id) => {
        const r = await refusal(`${g.http}/sse?topics=fz.1,fz.2&lastEventId=${encodeURIComponent(id)}`);
        assert.ok(r.status === 200 || (r.status === 400 && r.code === 'bad_since'), `${JSON.stringify(id)} -> ${r.status} ${r.code}`);
      }),
      { numRuns: 150, seed: 22 },
    );
    assert.equal((await fetch(`${g.http}/healthz`)).status, 200);
  });
});

describe('SSE door: tokens, origins, limits', { timeout: 30_000 }, () => {
  let g: TestGateway;
  before(async () => (g = await startGateway(['--api-insecure', '--jwt-secret', SECRET, '--allowed-origins', 'https://app.example', '--max-connections-per-ip', '2'])));
  after(() => g.stop());

  it('auth as /ws: Bearer header or token= query; bad or missing tokens 401, topics outside the grant 403', async () => {
    const t = await token('u1', { subscribe: ['ok.*'] });
    assert.equal((await refusal(`${g.http}/sse?topics=ok.1`)).status, 401);
    assert.deepEqual(await refusal(`${g.http}/sse?topics=ok.1&token=not.a.jwt`), { status: 401, code: 'unauthorized' });
    assert.equal((await refusal(`${g.http}/sse?topics=no.1&token=${t}`)).status, 403);
    const byHeader = watch(`${g.http}/sse?topics=ok.1`, { headers: { authorization: `Bearer ${t}` } });
    await eventually('subscribed by header', () => byHeader.events.some((e) => e.type === 'subscribed'));
    byHeader.es.close();
    const byQuery = watch(`${g.http}/sse?topics=ok.1&token=${t}`);
    await eventually('subscribed by query', () => byQuery.events.some((e) => e.type === 'subscribed'));
    byQuery.es.close();
  });

  it('server-side control reaches SSE streams: POST /subscribe adds a topic, POST /disconnect ends the stream with event: close', async () => {
    const t = await token('u3');
    const { es, events } = watch(`${g.http}/sse?topics=own.1&token=${t}`);
    await eventually('subscribed', () => events.some((e) => e.type === 'subscribed'));
    const post = (path: string, body: unknown) => fetch(`${g.http}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then((r) => r.json() as Promise<{ affected: number }>);
    assert.equal((await post('/subscribe', { user: 'u3', topic: 'added.1' })).affected, 1);
    await publish(g, 'added.1', 'pushed');
    await eventually('delivery on the added topic', () => delivered(events).includes('added.1:1'));
    // The cursor now covers the added topic too (the stream's second entry).
    assert.match(events.at(-1)?.id ?? '', /^[A-Za-z0-9_-]+\.0,[A-Za-z0-9_-]+\.1$/);
    assert.equal((await post('/disconnect', { user: 'u3', reconnect: false })).affected, 1);
    await eventually('close event', () => events.some((e) => e.type === 'close'));
    es.close();
    assert.deepEqual(events.find((e) => e.type === 'close')?.data, { code: 4003, reason: 'disconnected by the server' });
  });

  it('CORS with credentials for allowed origins, 403 for others; an SSE stream counts against --max-connections-per-ip', async () => {
    const t = await token('u2');
    const ok = await fetch(`${g.http}/sse?topics=c.1&token=${t}`, { headers: { origin: 'https://app.example' } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('access-control-allow-origin'), 'https://app.example');
    assert.equal(ok.headers.get('access-control-allow-credentials'), 'true');
    assert.deepEqual(await refusal(`${g.http}/sse?topics=c.1&token=${t}`, { origin: 'https://evil.example' }), { status: 403, code: 'origin_not_allowed' });
    const second = await fetch(`${g.http}/sse?topics=c.1&token=${t}`);
    assert.equal(second.status, 200);
    assert.deepEqual(await refusal(`${g.http}/sse?topics=c.1&token=${t}`), { status: 429, code: 'too_many_connections_per_ip' });
    await ok.body?.cancel();
    await second.body?.cancel();
  });
});

describe('SSE door: connect proxy, slow readers', { timeout: 30_000 }, () => {
  let g: TestGateway;
  let app: AppBackend;
  before(async () => {
    app = await AppBackend.start();
    g = await startGateway(['--api-insecure', '--connect-proxy-url', `${app.url}/connect`, '--max-backpressure', '65536']);
  });
  after(async () => {
    await g.stop();
    await app.stop();
  });

  it('the connect proxy hears the request cookies and its server topics stream too', async () => {
    app.on('/connect', (r, res) => {
      const cookie = (r.body as { headers: Record<string, string> }).headers.cookie;
      if (cookie !== 'session=s1') return json(res, 401, { reason: 'no session' });
      json(res, 200, { user: 'u1', subscribe: ['feed.*'], topics: ['user:u1'] });
    });
    assert.deepEqual(await refusal(`${g.http}/sse?topics=feed.1`, { cookie: 'session=nope' }), { status: 401, code: 'unauthorized' });
    const { es, events } = watch(`${g.http}/sse?topics=feed.1`, { headers: { cookie: 'session=s1' } });
    await eventually('both subscribed', () => events.filter((e) => e.type === 'subscribed').length === 2);
    await publish(g, 'user:u1', 'for you');
    await eventually('server topic delivery', () => delivered(events).includes('user:u1:1'));
    es.close();
  });

  it('a reader that does not read is cut like a slow WebSocket consumer', async () => {
    const socket = connect(g.port, '127.0.0.1');
    socket.write(`GET /sse?topics=slow.1 HTTP/1.1\r\nHost: 127.0.0.1\r\ncookie: session=s1\r\n\r\n`);
    app.on('/connect', (_r, res) => json(res, 200, { user: 'slow' }));
    await eventually('subscribed', () => g.gw.hub.get('slow.1')?.subscribers === 1);
    socket.pause();
    const big = 'x'.repeat(32 * 1024);
    for (let i = 0; i < 400 && g.gw.stats.slowConsumerDisconnects === 0; i++) await publish(g, 'slow.1', big);
    await eventually('cut', () => g.gw.stats.slowConsumerDisconnects === 1 && (g.gw.hub.get('slow.1')?.subscribers ?? 0) === 0 && g.gw.stats.sseConnections === 0);
    assert.equal(g.gw.stats.disconnects.slow_consumer, 1);
    socket.destroy();
  });
});
