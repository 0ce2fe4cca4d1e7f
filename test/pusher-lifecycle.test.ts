import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RawClient, freePort, metric, startGateway, waitFor, SINGLE_THREAD_ONLY } from './helpers/gateway';
import { APP, collect, connectionState, pusherClient, rawPusher, serverSdk, subscribed } from './helpers/pusher-clients';

const APPS = ['--pusher-apps', `${APP.appId}:${APP.key}:${APP.secret}`];

describe('Pusher connection lifecycle: quota, pong timeout, drain, metrics', () => {
  it('over the connection quota: pusher:error 4100 and close 4100 (reconnect after a pause)', async () => {
    const g = await startGateway([...APPS, '--max-connections', '2']);
    try {
      const a = await rawPusher(g.port);
      const b = await rawPusher(g.port);
      const c = await rawPusher(g.port);
      const code = await new Promise<number>((resolve) => c.ws.once('close', resolve));
      assert.equal(code, 4100);
      assert.deepEqual(c.frames[0], { event: 'pusher:error', data: { code: 4100, message: 'Over connection quota' } });
      assert.equal(a.ws.readyState, a.ws.OPEN);
      a.ws.close();
      b.ws.close();
    } finally {
      await g.stop();
    }
  });

  it('a silent connection gets pusher:ping after the activity timeout and 4201 after the pong timeout; an answering one stays', async () => {
    const g = await startGateway([...APPS, '--pusher-activity-timeout', '1', '--pusher-pong-timeout', '1']);
    let js: ReturnType<typeof pusherClient> | null = null;
    try {
      const silent = await rawPusher(g.port);
      const answering = await rawPusher(g.port);
      answering.ws.on('message', (d) => {
        if ((JSON.parse(String(d)) as { event: string }).event === 'pusher:ping') answering.ws.send('{"event":"pusher:pong","data":{}}');
      });
      js = pusherClient(g.port);
      await connectionState(js, 'connected');
      const code = await new Promise<number>((resolve) => silent.ws.once('close', resolve));
      assert.equal(code, 4201);
      assert.ok(silent.frames.some((f) => f.event === 'pusher:ping'), 'pinged before the close');
      await new Promise((r) => setTimeout(r, 2500));
      assert.equal(answering.ws.readyState, answering.ws.OPEN, 'a connection that answers pings stays');
      assert.equal(js.connection.state, 'connected', 'pusher-js keeps its connection alive by itself');
      assert.equal(await metric(g.http, 'wsgate_disconnects_total{reason="pong_timeout"}'), 1);
      answering.ws.close();
    } finally {
      js?.disconnect();
      await g.stop();
    }
  });

  it('connections and subscriptions are labelled by protocol; the unlabelled totals still count both doors', async () => {
    const g = await startGateway([...APPS]);
    try {
      const js = pusherClient(g.port);
      await subscribed(js.subscribe('gauges'));
      const wsgate = await RawClient.open(`${g.ws}?topics=gauges,other`);
      await waitFor(async () => (await metric(g.http, 'wsgate_protocol_subscriptions{protocol="wsgate"}')) === 2, 3000, 'wsgate subscriptions');
      assert.equal(await metric(g.http, 'wsgate_protocol_connections{protocol="pusher"}'), 1);
      assert.equal(await metric(g.http, 'wsgate_protocol_connections{protocol="wsgate"}'), 1);
      assert.equal(await metric(g.http, 'wsgate_connections'), 2);
      assert.equal(await metric(g.http, 'wsgate_protocol_subscriptions{protocol="pusher"}'), 1);
      assert.equal(await metric(g.http, 'wsgate_protocol_subscriptions{protocol="wsgate"}'), 2);
      assert.ok((await metric(g.http, 'wsgate_pusher_frames_received_total')) >= 1);
      js.disconnect();
      wsgate.close();
    } finally {
      await g.stop();
    }
  });

  it('drain closes Pusher clients with 4200; pusher-js reconnects by itself to the gateway that replaces it on the same port', { skip: SINGLE_THREAD_ONLY }, async () => {
    const port = await freePort();
    const flags = [...APPS, '--port', String(port), '--drain-window', '300'];
    const old = await startGateway(flags);
    const js = pusherClient(port);
    const ch = js.subscribe('after-drain');
    await subscribed(ch);
    const firstSocket = js.connection.socket_id;
    const closes: number[] = [];
    // pusher-js's ws transport: the close code it was given.
    (js.connection as unknown as { connection: { transport: { socket: { addEventListener(e: string, f: (ev: { code: number }) => void): void } } } }).connection.transport.socket.addEventListener('close', (ev) => closes.push(ev.code));
    const draining = old.gw.drain();
    const fresh = await startGateway(flags);
    try {
      await draining;
      await waitFor(() => closes.length > 0, 3000, 'close frame');
      assert.deepEqual(closes, [4200]);
      await waitFor(() => js.connection.state === 'connected' && js.connection.socket_id !== firstSocket, 10_000, 'pusher-js reconnected');
      const got = collect(ch, 'hello');
      await waitFor(async () => {
        await serverSdk(port).trigger('after-drain', 'hello', { n: 1 });
        return got.length > 0;
      }, 10_000, 'event on the new gateway after the automatic resubscribe');
      assert.deepEqual(got[0], { n: 1 });
    } finally {
      js.disconnect();
      await fresh.stop();
    }
  });
});
