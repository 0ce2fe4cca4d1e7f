import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type Echo from 'laravel-echo';
import PusherJS from 'pusher-js';
import { type TestGateway, startGateway, waitFor } from './helpers/gateway';
import { APP, type MemberData, sdkAuthorization, serverSdk } from './helpers/pusher-clients';

/**
 * Laravel Echo configured as a Laravel app configures it for Pusher or Soketi, with only the host
 * changed; the auth endpoint's answer is produced by the real `pusher` server SDK (as Laravel's
 * /broadcasting/auth does with the PHP SDK).
 */
function echo(EchoClass: typeof Echo, port: number, member: MemberData): Echo<'pusher'> {
  const sdk = serverSdk(port);
  return new EchoClass({
    broadcaster: 'pusher',
    Pusher: PusherJS,
    key: APP.key,
    cluster: 'mt1',
    wsHost: '127.0.0.1',
    wsPort: port,
    forceTLS: false,
    enabledTransports: ['ws'],
    disableStats: true,
    channelAuthorization: sdkAuthorization(sdk, member),
  } as never);
}

describe('laravel-echo over pusher-js against wsgate', () => {
  let g: TestGateway;
  let EchoClass: typeof Echo;
  const echos: Echo<'pusher'>[] = [];
  const open = (member: MemberData) => {
    const e = echo(EchoClass, g.port, member);
    echos.push(e);
    return e;
  };
  before(async () => {
    // laravel-echo 2's CommonJS build is a .js file in a "type":"module" package: require() cannot load
    // it, so load its ES build the way a bundler would (a real import, not tsc's require rewrite).
    const load = new Function('m', 'return import(m)') as (m: string) => Promise<{ default: typeof Echo }>;
    EchoClass = (await load('laravel-echo')).default;
    g = await startGateway(['--pusher-apps', `${APP.appId}:${APP.key}:${APP.secret}`, '--pusher-client-events']);
  });
  after(async () => {
    for (const e of echos) e.disconnect();
    await g.stop();
  });

  it('Echo.private(...).listen gets a Laravel-named event triggered by the server SDK', async () => {
    const e = open({ user_id: '1' });
    const shipped: unknown[] = [];
    let ready = false;
    e.private('orders.5').subscribed(() => (ready = true)).listen('OrderShipped', (d: unknown) => shipped.push(d));
    await waitFor(() => ready, 5000, 'private channel subscribed');
    await serverSdk(g.port).trigger('private-orders.5', 'App\\Events\\OrderShipped', { order: { id: 5 } });
    await waitFor(() => shipped.length === 1, 3000, 'OrderShipped');
    assert.deepEqual(shipped[0], { order: { id: 5 } });
  });

  it('Echo.join(...): here, joining, leaving and whispers between two users', async () => {
    const ann = open({ user_id: 'ann', user_info: { name: 'Ann' } });
    const herePeople: unknown[][] = [];
    const joined: unknown[] = [];
    const left: unknown[] = [];
    const whispers: unknown[] = [];
    ann
      .join('chat.1')
      .here((users: unknown[]) => herePeople.push(users))
      .joining((u: unknown) => joined.push(u))
      .leaving((u: unknown) => left.push(u))
      .listenForWhisper('typing', (d: unknown) => whispers.push(d));
    await waitFor(() => herePeople.length === 1, 5000, 'ann here');
    assert.deepEqual(herePeople[0], [{ name: 'Ann' }]);
    const bob = open({ user_id: 'bob', user_info: { name: 'Bob' } });
    const bobHere: unknown[][] = [];
    const room = bob.join('chat.1').here((users: unknown[]) => bobHere.push(users));
    await waitFor(() => bobHere.length === 1 && joined.length === 1, 5000, 'bob here, ann told');
    assert.deepEqual(bobHere[0], [{ name: 'Ann' }, { name: 'Bob' }]);
    assert.deepEqual(joined[0], { name: 'Bob' });
    room.whisper('typing', { who: 'bob' });
    await waitFor(() => whispers.length === 1, 3000, 'whisper');
    assert.deepEqual(whispers[0], { who: 'bob' });
    bob.leave('chat.1');
    await waitFor(() => left.length === 1, 3000, 'bob leaving');
    assert.deepEqual(left[0], { name: 'Bob' });
  });
});
