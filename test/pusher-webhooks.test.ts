import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { type Server, createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { type TestGateway, startGateway, waitFor, TEST_WORKERS } from './helpers/gateway';
import { APP, pusherClient, serverSdk, subscribed } from './helpers/pusher-clients';

interface Received {
  headers: Record<string, string | string[] | undefined>;
  body: string;
  events: { name: string; channel: string; user_id?: string; event?: string; data?: string; socket_id?: string }[];
}

describe('Pusher-format webhooks, signed with the app secret', () => {
  let app: Server;
  let g: TestGateway;
  const got: Received[] = [];
  const events = () => got.flatMap((r) => r.events.map((e) => `${e.name} ${e.channel}${e.user_id === undefined ? '' : ' ' + e.user_id}`));

  before(async () => {
    app = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        got.push({ headers: req.headers, body, events: (JSON.parse(body) as Received).events });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(app.address() as { port: number }).port}/pusher/webhooks`;
    g = await startGateway(['--pusher-apps', `${APP.appId}:${APP.key}:${APP.secret}`, '--pusher-client-events', '--pusher-webhook-url', url]);
  });
  after(async () => {
    await g.stop();
    await new Promise((r) => app.close(r));
  });

  it('channel_occupied, member_added, client_event, member_removed, channel_vacated; every body verifies with the pusher SDK', async () => {
    const ann = pusherClient(g.port, { member: { user_id: 'ann' } });
    const bob = pusherClient(g.port, { member: { user_id: 'bob' } });
    const room = ann.subscribe('presence-room');
    await subscribed(room);
    await subscribed(bob.subscribe('presence-room'));
    room.trigger('client-wave', { hi: 1 });
    await waitFor(() => events().includes('client_event presence-room ann'), 5000, 'client_event');
    ann.disconnect();
    bob.disconnect();
    await waitFor(() => events().includes('channel_vacated presence-room'), 5000, 'channel_vacated');
    await waitFor(() => events().length === 7, 5000, 'all seven events');
    const first = [
      'channel_occupied presence-room',
      'member_added presence-room ann',
      'member_added presence-room bob',
      'client_event presence-room ann',
      'member_removed presence-room ann',
    ];
    const last = ['channel_vacated presence-room', 'member_removed presence-room bob'];
    // With workers, ann and bob are on different workers, each sending its own batches: every event
    // once, but not in one order across the two.
    if (TEST_WORKERS > 1) assert.deepEqual(events().sort(), [...first, ...last].sort());
    else {
      assert.deepEqual(events().slice(0, 5), first);
      // member_removed waits for the cluster's answer (is the user on another node?); vacated does not.
      assert.deepEqual(events().slice(5).sort(), last);
    }
    const ce = got.flatMap((r) => r.events).find((e) => e.name === 'client_event');
    assert.equal(ce?.event, 'client-wave');
    assert.equal(ce?.data, '{"hi":1}');
    assert.match(ce?.socket_id ?? '', /^\d+\.\d+$/);
    const sdk = serverSdk(g.port);
    for (const r of got) {
      assert.equal(r.headers['x-pusher-key'], APP.key);
      assert.equal(r.headers['x-pusher-signature'], createHmac('sha256', APP.secret).update(r.body).digest('hex'));
      assert.ok(sdk.webhook({ headers: r.headers as Record<string, string>, rawBody: r.body }).isValid(), 'the pusher SDK accepts the webhook');
      assert.ok(!serverSdk(g.port, { ...APP, secret: 'other' }).webhook({ headers: r.headers as Record<string, string>, rawBody: r.body }).isValid());
    }
  });

  it('client_event of a frame read in place (string data): the same strings as a decoded one', async () => {
    const cy = pusherClient(g.port, { member: { user_id: 'cy' } });
    try {
      const talk = cy.subscribe('presence-talk');
      await subscribed(talk);
      // pusher-js sends string data as is: {"event":"client-say","data":"…","channel":"presence-talk"}.
      talk.trigger('client-say', 'h\\u00e9llo "x" 😀 \\ /');
      const said = () => got.flatMap((r) => r.events).find((e) => e.name === 'client_event' && e.event === 'client-say');
      await waitFor(() => said() !== undefined, 5000, 'client_event of client-say');
      assert.equal(said()?.data, 'h\\u00e9llo "x" 😀 \\ /');
      assert.equal(said()?.channel, 'presence-talk');
      assert.equal(said()?.user_id, 'cy');
      assert.equal(said()?.socket_id, cy.connection.socket_id);
    } finally {
      cy.disconnect();
    }
  });
});
