// Run from the repository root against a gateway started with --client-publish (npm start is one):
//   node docs/examples/client.mjs
import { WsgateClient } from 'wsgate/client';

const client = new WsgateClient({
  url: 'ws://127.0.0.1:8080/ws',
  codec: 'json', // or 'msgpack'
  // Optional: called before every (re)connect, e.g. to fetch a fresh JWT from your backend.
  token: () => process.env.WSGATE_TOKEN,
});

client.on('state', (s) => console.log('state', s.state, s.code ?? ''));
client.on('gap', (g) => console.warn(`missed ${g.topic} after seq ${g.expected.seq}; stream is at ${g.server.seq}`));
client.on('error', (e) => console.error('error', e.code, e.reason));

const received = new Promise((resolve) => {
  client.on('message', ({ topic, seq, data }) => {
    console.log('message', topic, seq, JSON.stringify(data));
    resolve();
  });
});

client.connect();
console.log('subscribed', await client.subscribe('news')); // { topic, seq, epoch }
try {
  console.log('published', await client.publish('news', { text: 'hi' })); // { seq }
} catch (e) {
  if (e.code !== 'forbidden') throw e;
  console.log('this gateway does not let clients publish (--client-publish)');
}
await received;
console.log('positions', JSON.stringify(client.positions()));
await client.unsubscribe('news');
client.close();
