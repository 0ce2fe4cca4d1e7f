import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type PusherJS from 'pusher-js';
import WebSocket from 'ws';
import { sign } from '../src/pusher/signature';
import { RawClient, type TestGateway, sleep, startGateway, waitFor } from './helpers/gateway';
import { APP, collect, connectionState, pusherClient, rawPusher, sdkUserAuthentication, serverSdk, signedIn, subscribed, withUnrefCloseTimers } from './helpers/pusher-clients';

const PUSHER_FLAGS = ['--pusher-apps', `${APP.appId}:${APP.key}:${APP.secret}`, '--pusher-client-events', '--client-publish'];

describe('Pusher front door with the real pusher-js and pusher SDK', () => {
  let g: TestGateway;
  const clients: PusherJS[] = [];
  const client = (opts: Parameters<typeof pusherClient>[1] = {}) => {
    const c = pusherClient(g.port, opts);
    clients.push(c);
    return c;
  };
  before(async () => {
    g = await startGateway(PUSHER_FLAGS);
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    await g.stop();
  });

  it('connects with a socket id in Pusher\'s format and answers pings', async () => {
    const raw = await rawPusher(g.port);
    const first = raw.frames[0] as { event: string; data: string };
    assert.equal(first.event, 'pusher:connection_established');
    const data = JSON.parse(first.data) as { socket_id: string; activity_timeout: number };
    assert.match(data.socket_id, /^\d+\.\d+$/);
    assert.equal(data.activity_timeout, 120);
    raw.ws.send(JSON.stringify({ event: 'pusher:ping', data: {} }));
    await waitFor(() => raw.frames.some((f) => f.event === 'pusher:pong'), 2000, 'pong');
    raw.ws.close();
  });

  it('refuses an unknown app key with 4001 and an unsupported protocol with 4007, after the handshake', async () => {
    for (const [key, query, code] of [['nope', 'protocol=7', 4001], [APP.key, 'protocol=4', 4007]] as const) {
      const raw = await rawPusher(g.port, key, query);
      const closed = await new Promise<number>((resolve) => raw.ws.once('close', resolve));
      assert.equal(closed, code);
      assert.deepEqual((raw.frames[0] as { event: string; data: { code: number } }).data.code, code);
    }
  });

  it('public channel: SDK trigger reaches pusher-js; wsgate publishes and Pusher events cross both doors', async () => {
    const c = client();
    const ch = c.subscribe('orders');
    await subscribed(ch);
    const created = collect(ch, 'created');
    const messages = collect(ch, 'message');
    const wsgate = await RawClient.open(`${g.ws}?topics=orders`);
    const sdk = serverSdk(g.port);
    assert.equal((await sdk.trigger('orders', 'created', { id: 1 })).status, 200);
    await fetch(`${g.http}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic: 'orders', data: { plain: true } }) });
    await waitFor(() => created.length === 1 && messages.length === 1, 3000, 'both events');
    assert.deepEqual(created[0], { id: 1 });
    assert.deepEqual(messages[0], { plain: true }, 'a wsgate publish is a Pusher event named message');
    await wsgate.received(2);
    assert.deepEqual(wsgate.json().map((d) => d.d), [{ event: 'created', data: '{"id":1}' }, { plain: true }]);
    wsgate.close();
  });

  it('private channels need a valid signature: a bad one gets pusher:subscription_error and the connection stays', async () => {
    const c = client();
    await subscribed(c.subscribe('private-a'));
    const forger = client({ sdk: serverSdk(g.port, { ...APP, secret: 'wrong-secret' }) });
    await assert.rejects(subscribed(forger.subscribe('private-b')), { status: 401 });
    assert.equal(forger.connection.state, 'connected');
    const raw = await rawPusher(g.port);
    raw.ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'private-c' } }));
    await waitFor(() => raw.frames.some((f) => f.event === 'pusher:subscription_error'), 2000, 'missing auth refused');
    raw.ws.close();
  });

  it('encrypted channels: payloads pass through untouched (the server never decrypts)', async () => {
    const raw = await rawPusher(g.port);
    const channel = 'private-encrypted-vault';
    raw.ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel, auth: `${APP.key}:${sign(APP.secret, `${raw.socketId}:${channel}`)}` } }));
    await waitFor(() => raw.frames.some((f) => f.event === 'pusher_internal:subscription_succeeded'), 2000, 'subscribed');
    const sdk = new (require('pusher') as typeof import('pusher'))({ ...APP, host: '127.0.0.1', port: String(g.port), useTLS: false, encryptionMasterKeyBase64: Buffer.alloc(32, 7).toString('base64') });
    await sdk.trigger(channel, 'secret', { pin: 1234 });
    await waitFor(() => raw.frames.some((f) => f.event === 'secret'), 2000, 'encrypted event');
    const data = JSON.parse((raw.frames.find((f) => f.event === 'secret') as { data: string }).data) as { nonce: string; ciphertext: string };
    assert.equal(typeof data.nonce, 'string');
    assert.equal(typeof data.ciphertext, 'string');
    raw.ws.close();
  });

  it('cache channels: a subscriber gets the last event at once, or pusher:cache_miss', async () => {
    const sdk = serverSdk(g.port);
    await sdk.trigger('cache-ticker', 'price', { v: 1 });
    await sdk.trigger('cache-ticker', 'price', { v: 2 });
    const c = client();
    const ch = c.subscribe('cache-ticker');
    const prices = collect(ch, 'price');
    await subscribed(ch);
    await waitFor(() => prices.length === 1, 2000, 'cached event');
    assert.deepEqual(prices[0], { v: 2 });
    const fresh = c.subscribe('cache-empty');
    const misses = collect(fresh, 'pusher:cache_miss');
    await subscribed(fresh);
    await waitFor(() => misses.length === 1, 2000, 'cache miss');
  });

  it('presence: members once per user, added and removed at the first and last connection, queryable over REST', async () => {
    const ann1 = client({ member: { user_id: 'ann', user_info: { name: 'Ann' } } });
    const watcher = client({ member: { user_id: 'bob' } });
    const room = watcher.subscribe('presence-room');
    const added = collect(room, 'pusher:member_added');
    const removed = collect(room, 'pusher:member_removed');
    await subscribed(room);
    await subscribed(ann1.subscribe('presence-room'));
    const ann2 = client({ member: { user_id: 'ann', user_info: { name: 'Ann' } } });
    const second = (await subscribed(ann2.subscribe('presence-room'))) as { count: number; members: Record<string, unknown> };
    assert.equal(second.count, 2);
    assert.deepEqual(second.members, { bob: null, ann: { name: 'Ann' } });
    await sleep(200);
    assert.equal(added.length, 1, 'ann added once for two connections');
    const sdk = serverSdk(g.port);
    // In no particular order (with workers, each worker's members are listed in turn).
    const { users } = (await (await sdk.get({ path: '/channels/presence-room/users' })).json()) as { users: { id: string }[] };
    assert.deepEqual(users.map((u) => u.id).sort(), ['ann', 'bob']);
    assert.deepEqual(await (await sdk.get({ path: '/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' } })).json(), { channels: { 'presence-room': { user_count: 2 } } });
    ann1.disconnect();
    await sleep(200);
    assert.equal(removed.length, 0, 'ann still has a connection');
    ann2.disconnect();
    await waitFor(() => removed.length === 1, 2000, 'member removed after the last connection');
    assert.deepEqual(removed[0], { id: 'ann', info: { name: 'Ann' } });
  });

  it('client events: private and presence only, never echoed, user_id on presence, rate-limited with 4301', async () => {
    const a = client({ member: { user_id: 'a' } });
    const b = client({ member: { user_id: 'b' } });
    const pa = a.subscribe('private-chat');
    const pb = b.subscribe('private-chat');
    await Promise.all([subscribed(pa), subscribed(pb)]);
    const atB = collect(pb, 'client-typing');
    const atA = collect(pa, 'client-typing');
    pa.trigger('client-typing', { on: true });
    await waitFor(() => atB.length === 1, 2000, 'client event at the other client');
    assert.deepEqual(atB[0], { on: true });
    await sleep(100);
    assert.equal(atA.length, 0, 'not echoed to the sender');
    const ra = a.subscribe('presence-talk');
    const rb = b.subscribe('presence-talk');
    await Promise.all([subscribed(ra), subscribed(rb)]);
    const meta: unknown[] = [];
    rb.bind('client-hi', (_d: unknown, m: { user_id?: string }) => meta.push(m?.user_id));
    ra.trigger('client-hi', {});
    await waitFor(() => meta.length === 1, 2000, 'presence client event');
    assert.equal(meta[0], 'a');
    const raw = await rawPusher(g.port);
    raw.ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'public-x' } }));
    raw.ws.send(JSON.stringify({ event: 'client-x', channel: 'public-x', data: {} }));
    await waitFor(() => raw.frames.some((f) => f.event === 'pusher:error'), 2000, 'public client event refused');
    const channel = 'private-flood';
    raw.ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel, auth: `${APP.key}:${sign(APP.secret, `${raw.socketId}:${channel}`)}` } }));
    for (let i = 0; i < 15; i++) raw.ws.send(JSON.stringify({ event: 'client-spam', channel, data: { i } }));
    await waitFor(() => raw.frames.some((f) => (f.data as { code?: number })?.code === 4301), 2000, '4301 over the client event rate');
    assert.equal(raw.ws.readyState, WebSocket.OPEN, 'the connection stays');
    raw.ws.close();
  });

  it('socket_id exclusion and batch events from the SDK', async () => {
    const a = client();
    const b = client();
    const ca = a.subscribe('feed');
    const cb = b.subscribe('feed');
    await Promise.all([subscribed(ca), subscribed(cb), connectionState(a, 'connected')]);
    const atA = collect(ca, 'news');
    const atB = collect(cb, 'news');
    const sdk = serverSdk(g.port);
    await sdk.trigger('feed', 'news', 'not for a', { socket_id: a.connection.socket_id });
    await sdk.triggerBatch([
      { channel: 'feed', name: 'news', data: 'one' },
      { channel: 'feed', name: 'news', data: 'two' },
    ]);
    await waitFor(() => atB.length === 3, 2000, 'b gets all three');
    assert.deepEqual(atB, ['not for a', 'one', 'two']);
    await sleep(100);
    assert.deepEqual(atA, ['one', 'two'], 'the excluded socket got only the batch');
  });

  it('refuses bad signatures, stale timestamps and unknown apps with Pusher\'s statuses', async () => {
    await assert.rejects(serverSdk(g.port, { ...APP, secret: 'nope' }).trigger('feed', 'e', 1), { status: 401 });
    const ts = Math.floor(Date.now() / 1000) - 601;
    const q = `auth_key=${APP.key}&auth_timestamp=${ts}&auth_version=1.0`;
    const stale = await fetch(`${g.http}/apps/1/channels?${q}&auth_signature=${sign(APP.secret, `GET\n/apps/1/channels\n${q}`)}`);
    assert.equal(stale.status, 401);
    assert.match(await stale.text(), /stale timestamp/);
    assert.equal((await fetch(`${g.http}/apps/1/channels`)).status, 401, 'unsigned');
    assert.equal((await fetch(`${g.http}/apps/9/channels`)).status, 404, 'unknown app');
    const body = JSON.stringify({ name: 'e', data: '1', channels: Array.from({ length: 101 }, (_, i) => `c${i}`) });
    const md5 = createHash('md5').update(body).digest('hex');
    const q2 = `auth_key=${APP.key}&auth_timestamp=${Math.floor(Date.now() / 1000)}&auth_version=1.0&body_md5=${md5}`;
    const many = await fetch(`${g.http}/apps/1/events?${q2}&auth_signature=${sign(APP.secret, `POST\n/apps/1/events\n${q2}`)}`, { method: 'POST', body });
    assert.equal(many.status, 400, 'more than 100 channels (the SDK refuses this itself; a hand-signed request)');
    await assert.rejects(serverSdk(g.port).trigger('feed', 'e', 'x'.repeat(10_241)), { status: 413 });
  });

  it('terminate_connections closes a signed-in user\'s connections with 4009, and only theirs', async () => {
    const sdk = serverSdk(g.port);
    const [carol, other] = [client({ extra: { userAuthentication: sdkUserAuthentication(sdk, 'carol') } }), client({ extra: { userAuthentication: sdkUserAuthentication(sdk, 'other') } })];
    await Promise.all([signedIn(carol), signedIn(other)]);
    const codes: unknown[] = [];
    // pusher-js reports the close as a PusherError with its code (then again wrapped as a WebSocketError).
    carol.connection.bind('error', (e: { type: string; data?: { code?: number } }) => e.type === 'PusherError' && codes.push(e.data?.code));
    await withUnrefCloseTimers(async () => {
      assert.equal((await sdk.terminateUserConnections('carol')).status, 200);
      await connectionState(carol, 'disconnected');
    });
    assert.deepEqual(codes, [4009]);
    await sleep(100);
    assert.equal(other.connection.state, 'connected');
  });

  it('sendToUser reaches every connection signed in as the user, and no other', async () => {
    const sdk = serverSdk(g.port);
    const dave = [client({ extra: { userAuthentication: sdkUserAuthentication(sdk, 'dave') } }), client({ extra: { userAuthentication: sdkUserAuthentication(sdk, 'dave') } })];
    const eve = client({ extra: { userAuthentication: sdkUserAuthentication(sdk, 'eve') } });
    const anonymous = client();
    await Promise.all([...dave, eve].map(signedIn));
    await connectionState(anonymous, 'connected');
    const got = [...dave, eve].map((c) => {
      const events: unknown[] = [];
      c.user.bind('notice', (d: unknown) => events.push(d));
      return events;
    });
    const anonymousGot: unknown[] = [];
    anonymous.bind_global((name: string, d: unknown) => name === 'notice' && anonymousGot.push(d));
    // A raw socket not signed in, and one signed in as eve, both asking for dave's channel.
    const [notSignedIn, asEve] = [await rawPusher(g.port), await rawPusher(g.port)];
    const eveAuth = sdk.authenticateUser(asEve.socketId as string, { id: 'eve' });
    asEve.ws.send(JSON.stringify({ event: 'pusher:signin', data: eveAuth }));
    await waitFor(() => asEve.frames.some((f) => f.event === 'pusher:signin_success'), 2000, 'raw signin');
    for (const raw of [notSignedIn, asEve]) raw.ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: '#server-to-user-dave', auth: '' } }));
    for (const raw of [notSignedIn, asEve]) {
      await waitFor(() => raw.frames.some((f) => f.event === 'pusher:subscription_error'), 2000, 'subscription refused');
      assert.equal((raw.frames.find((f) => f.event === 'pusher:subscription_error')?.data as { status: number }).status, 401);
    }
    assert.equal((await sdk.sendToUser('dave', 'notice', { n: 1 })).status, 200);
    assert.equal((await sdk.sendToUser('eve', 'notice', { n: 2 })).status, 200);
    await waitFor(() => got.every((events) => events.length > 0), 3000, 'each signed-in connection gets its user\'s event');
    await sleep(200);
    assert.deepEqual(got, [[{ n: 1 }], [{ n: 1 }], [{ n: 2 }]]);
    assert.deepEqual(anonymousGot, []);
    for (const raw of [notSignedIn, asEve]) {
      assert.equal(raw.frames.filter((f) => f.event === 'notice').length, 0, 'no event for dave reached a socket that is not dave');
      raw.ws.close();
    }
  });
});
