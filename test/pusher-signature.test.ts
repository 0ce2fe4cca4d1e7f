import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Pusher from 'pusher';
import { PusherApps, parsePusherApps } from '../src/pusher/apps';
import { type ChannelKind, channelKind } from '../src/pusher/channels';
import { channelAuthValid, userAuthValid, verifyRestRequest } from '../src/pusher/signature';

// The real server SDK signs; wsgate's checks must accept exactly what it produces and nothing altered.
const sdk = new Pusher({ appId: '1', key: 'app-key', secret: 'app-secret', host: '127.0.0.1', port: '1' });

describe('Pusher apps, channel kinds and signatures', () => {
  it('parses --pusher-apps and refuses malformed or ambiguous lists', () => {
    assert.deepEqual(parsePusherApps('1:k:s,2:k2:s2'), [
      { id: '1', key: 'k', secret: 's' },
      { id: '2', key: 'k2', secret: 's2' },
    ]);
    assert.deepEqual(parsePusherApps(''), []);
    for (const bad of ['1:k', '1:k:s:x', '1:k:s,1:k2:s', '1:k:s,2:k:s', '1:k y:s', ':k:s']) assert.equal(parsePusherApps(bad), null, bad);
    const one = new PusherApps(parsePusherApps('1:k:s') ?? []);
    assert.equal(one.topicOf(one.list[0]!, 'orders'), 'orders');
    const two = new PusherApps(parsePusherApps('1:k:s,2:k2:s2') ?? []);
    assert.equal(two.topicOf(two.list[1]!, 'orders'), '2:orders');
    assert.equal(two.channelOf(two.list[1]!, '2:orders'), 'orders');
    assert.equal(two.channelOf(two.list[0]!, '2:orders'), null);
  });

  it('classifies channels by prefix and refuses names outside Pusher\'s rules', () => {
    const kind = (k: Partial<ChannelKind>) => ({ auth: false, presence: false, encrypted: false, cache: false, user: null, ...k });
    assert.deepEqual(channelKind('orders'), kind({}));
    assert.deepEqual(channelKind('private-x'), kind({ auth: true }));
    assert.deepEqual(channelKind('private-encrypted-x'), kind({ auth: true, encrypted: true }));
    assert.deepEqual(channelKind('presence-room'), kind({ auth: true, presence: true }));
    assert.deepEqual(channelKind('cache-ticker'), kind({ cache: true }));
    assert.deepEqual(channelKind('private-cache-x'), kind({ auth: true, cache: true }));
    assert.deepEqual(channelKind('presence-cache-x'), kind({ auth: true, presence: true, cache: true }));
    assert.deepEqual(channelKind('#server-to-user-u.1@x'), kind({ user: 'u.1@x' }));
    for (const bad of ['#server-to-user-', '#server-to-user-a b', '#server-to-user-a*', '#other']) assert.equal(channelKind(bad), null, bad);
    for (const bad of ['', 'a b', 'x'.repeat(165), 'a:b', 'a/b', 'ä']) assert.equal(channelKind(bad), null, bad);
  });

  it('accepts the SDK\'s channel and user signatures, refuses altered ones', () => {
    const priv = sdk.authorizeChannel('123.456', 'private-chat');
    assert.equal(channelAuthValid('app-key', 'app-secret', priv.auth, '123.456', 'private-chat'), true);
    assert.equal(channelAuthValid('app-key', 'app-secret', priv.auth, '123.457', 'private-chat'), false, 'another socket');
    assert.equal(channelAuthValid('app-key', 'app-secret', priv.auth, '123.456', 'private-chat2'), false, 'another channel');
    assert.equal(channelAuthValid('other-key', 'app-secret', priv.auth, '123.456', 'private-chat'), false, 'another key');
    const pres = sdk.authorizeChannel('1.2', 'presence-room', { user_id: 'u1', user_info: { name: 'Ann' } });
    assert.equal(channelAuthValid('app-key', 'app-secret', pres.auth, '1.2', 'presence-room', pres.channel_data), true);
    assert.equal(channelAuthValid('app-key', 'app-secret', pres.auth, '1.2', 'presence-room', '{"user_id":"u2"}'), false, 'forged channel_data');
    const user = sdk.authenticateUser('1.2', { id: 'u1', name: 'Ann' });
    assert.equal(userAuthValid('app-key', 'app-secret', user.auth, '1.2', user.user_data), true);
    assert.equal(userAuthValid('app-key', 'app-secret', user.auth, '1.3', user.user_data), false);
  });

  it('verifies REST signatures as the SDK makes them: timestamp window, body md5, every parameter', () => {
    // The SDK's own signer (not exported from its index): what every `pusher` REST call sends.
    const { createSignedQueryString } = require('pusher/lib/requests') as {
      createSignedQueryString(token: unknown, req: { method: string; path: string; body?: string; params?: Record<string, string> }): string;
    };
    const token = (sdk as unknown as { config: { token: unknown } }).config.token;
    const body = '{"name":"e","data":"{}","channels":["a"]}';
    const q = createSignedQueryString(token, { method: 'POST', path: '/apps/1/events', body });
    const req = (query: string, b = body, method = 'POST', path = '/apps/1/events') => ({ method, path, params: new Map(new URLSearchParams(query)), body: Buffer.from(b) });
    const now = Math.floor(Date.now() / 1000);
    assert.equal(verifyRestRequest(req(q), 'app-key', 'app-secret', now), null);
    assert.equal(verifyRestRequest(req(q, body + ' '), 'app-key', 'app-secret', now), 'bad_body_md5');
    assert.equal(verifyRestRequest(req(q, body, 'POST', '/apps/1/batch_events'), 'app-key', 'app-secret', now), 'bad_signature');
    assert.equal(verifyRestRequest(req(q), 'app-key', 'other', now), 'bad_signature');
    assert.equal(verifyRestRequest(req(q), 'app-key', 'app-secret', now + 601), 'stale_timestamp');
    assert.equal(verifyRestRequest(req(q.replace(/&auth_signature=[0-9a-f]+/, '')), 'app-key', 'app-secret', now), 'missing_params');
    const g = createSignedQueryString(token, { method: 'GET', path: '/apps/1/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' } });
    assert.equal(verifyRestRequest(req(g, '', 'GET', '/apps/1/channels'), 'app-key', 'app-secret', now), null);
    assert.equal(verifyRestRequest(req(g.replace('presence-', 'private-'), '', 'GET', '/apps/1/channels'), 'app-key', 'app-secret', now), 'bad_signature');
  });
});
