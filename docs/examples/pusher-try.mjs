// Try wsgate's Pusher door locally: a private and a presence channel through a real auth endpoint, and an
// event triggered with the `pusher` server SDK. Start the gateway first (README, "Moving from Pusher or Soketi"):
//   npx wsgate serve --host 127.0.0.1 --port 8080 --pusher-apps 1:try-key:try-secret-0123456789abcdef --api-insecure
import { once } from 'node:events';
import { createServer } from 'node:http';
import Pusher from 'pusher'; // the server SDK your backend uses: triggers events, signs subscriptions
import PusherJS from 'pusher-js'; // the browser client (its Node build here)

const port = Number(process.env.WSGATE_PORT ?? 8080);
const app = { appId: '1', key: 'try-key', secret: 'try-secret-0123456789abcdef' };
const backend = new Pusher({ ...app, host: '127.0.0.1', port: String(port), useTLS: false });

// The auth endpoint of your application: pusher-js POSTs socket_id and channel_name (form-encoded) for
// every private- and presence- channel. Decide here who may join; this one lets everyone in as "alice".
// (Here on any free port of this machine; in a browser it is a route of your web app.)
const authEndpoint = createServer(async (req, res) => {
  let body = '';
  for await (const chunk of req) body += chunk;
  const form = new URLSearchParams(body);
  const channel = form.get('channel_name') ?? '';
  const member = channel.startsWith('presence-') ? { user_id: 'alice', user_info: { name: 'Alice' } } : undefined;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(backend.authorizeChannel(form.get('socket_id') ?? '', channel, member)));
});
authEndpoint.listen(0, '127.0.0.1');
await once(authEndpoint, 'listening');

const client = new PusherJS(app.key, {
  cluster: 'local', // required by pusher-js, unused
  wsHost: '127.0.0.1',
  wsPort: port,
  forceTLS: false, // plain ws:// locally; true behind TLS in production
  enabledTransports: ['ws'],
  channelAuthorization: { endpoint: `http://127.0.0.1:${authEndpoint.address().port}/pusher/auth`, transport: 'ajax' },
});
const subscribed = (channel) =>
  new Promise((resolve, reject) => {
    channel.bind('pusher:subscription_succeeded', resolve);
    channel.bind('pusher:subscription_error', (e) => reject(new Error(`${channel.name}: ${JSON.stringify(e)}`)));
  });
const orders = client.subscribe('private-orders');
const room = client.subscribe('presence-room');
await Promise.all([subscribed(orders), subscribed(room)]);
console.log(`subscribed to private-orders and presence-room (members: ${room.members.count}, me: ${room.members.me.id})`);

const received = new Promise((resolve) => orders.bind('order-created', resolve));
await backend.trigger('private-orders', 'order-created', { id: 42 }); // POST /apps/1/events, signed with the secret
console.log('received order-created:', JSON.stringify(await received));
client.disconnect();
authEndpoint.close();
