import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { App, type us_listen_socket, us_listen_socket_close, us_socket_local_port } from 'uWebSockets.js';
import WebSocket from 'ws';
import { APP, rawPusher, serverSdk } from './helpers/pusher-clients';
import { RawClient, type TestGateway, startGateway, waitFor } from './helpers/gateway';

// uWS.js copies the user data given to res.upgrade onto its WebSocket object. An object V8 keeps in
// dictionary mode costs ~830 B instead of ~130 B per idle connection (issue 14, goal 3), and nothing
// else shows it: the connection works the same. %HasFastProperties is V8's own answer.
setFlagsFromString('--allow-natives-syntax');
const hasFastProperties = new Function('o', 'return %HasFastProperties(o)') as (o: object) => boolean;
setFlagsFromString('--no-allow-natives-syntax');

/** The user data of a socket opened on a bare uWS app with `userData`, as uWS keeps it. */
async function onBareUws(userData: object): Promise<object> {
  let listen: us_listen_socket | null = null;
  let opened: (data: object) => void = () => undefined;
  const seen = new Promise<object>((resolve) => (opened = resolve));
  const app = App().ws<object>('/*', {
    upgrade: (res, req, context) => res.upgrade(userData, req.getHeader('sec-websocket-key'), '', req.getHeader('sec-websocket-extensions'), context),
    open: (ws) => opened(ws.getUserData()),
  });
  const port = await new Promise<number>((resolve) => app.listen('127.0.0.1', 0, (s) => resolve(us_socket_local_port((listen = s)))));
  const client = new WebSocket(`ws://127.0.0.1:${port}/`);
  try {
    await once(client, 'open');
    return await seen;
  } finally {
    client.terminate();
    if (listen !== null) us_listen_socket_close(listen);
  }
}

describe('per-connection state stays a fast-properties object on the uWS socket', () => {
  let g: TestGateway;
  before(async () => {
    g = await startGateway(['--pusher-apps', `${APP.appId}:${APP.key}:${APP.secret}`, '--pusher-client-events', '--client-publish']);
  });
  after(() => g.stop());

  it('control: user data of 16 fields becomes a dictionary on the uWS socket, 15 stay fast (what the check guards against)', async () => {
    const fields = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`f${i}`, i]));
    assert.equal(hasFastProperties(fields(16)), true, 'a plain 16-field literal is fast: the dictionary comes from the copy');
    assert.equal(hasFastProperties(await onBareUws(fields(16))), false);
    assert.equal(hasFastProperties(await onBareUws(fields(15))), true);
  });

  it('wsgate connections: opened with ?topics=, after commands (command bucket made) and a subscribe', async () => {
    const c = await RawClient.open(`${g.ws}?topics=a,b`);
    c.ws.send(JSON.stringify({ op: 'sub', topic: 'c', id: 1 }));
    c.ws.send(JSON.stringify({ op: 'pub', topic: 'c', data: { x: 1 }, id: 2 }));
    await c.received(3); // two oks and the delivery
    const plain = await RawClient.open(g.ws);
    try {
      const sockets = [...g.gw['sockets']];
      assert.equal(sockets.length, 2);
      const busy = sockets.find((ws) => ws.getUserData().topics.size === 3);
      assert.ok(busy !== undefined && busy.getUserData().cmd !== null, 'the commands made the bucket');
      for (const ws of sockets) assert.equal(hasFastProperties(ws.getUserData()), true, `fields: ${Object.keys(ws.getUserData()).length}`);
    } finally {
      c.close();
      plain.close();
    }
  });

  it('Pusher connections: after a private subscribe (channels made) and a client event (bucket made)', async () => {
    const p = await rawPusher(g.port);
    const channel = 'private-shape';
    const { auth } = serverSdk(g.port).authorizeChannel(p.socketId as string, channel);
    p.ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel, auth } }));
    await waitFor(() => p.frames.some((f) => f.event === 'pusher_internal:subscription_succeeded'), 5000, 'subscribed');
    p.ws.send(JSON.stringify({ event: 'client-hi', channel, data: {} }));
    try {
      const sockets = [...(g.gw['pusher']?.sockets.values() ?? [])];
      assert.equal(sockets.length, 1);
      await waitFor(() => sockets.every((ws) => ws.getUserData().cmd !== null), 5000, 'the client event made the bucket');
      for (const ws of sockets) assert.equal(hasFastProperties(ws.getUserData()), true, `fields: ${Object.keys(ws.getUserData()).length}`);
    } finally {
      p.ws.terminate();
    }
  });
});
