// The TypeScript variant of client.mjs (an ES module: top-level await). Type-checked by the test suite:
//   npx tsc --noEmit --module nodenext --moduleResolution nodenext --types node docs/examples/client.mts
import { type MessageEvent, WsgateClient, WsgateError } from 'wsgate/client';

const client = new WsgateClient({
  url: 'ws://127.0.0.1:8080/ws',
  codec: 'json', // or 'msgpack'
  // Optional: called before every (re)connect, e.g. to fetch a fresh JWT from your backend.
  token: () => process.env.WSGATE_TOKEN,
});

client.on('state', (s) => console.log('state', s.state, s.code ?? ''));
client.on('gap', (g) => console.warn(`missed ${g.topic} after seq ${g.expected.seq}; stream is at ${g.server.seq}`));
client.on('error', (e: WsgateError) => console.error('error', e.code, e.reason));

const received = new Promise<MessageEvent>((resolve) => client.on('message', resolve));

client.connect();
console.log('subscribed', await client.subscribe('news')); // { topic, seq, epoch }
try {
  console.log('published', await client.publish('news', { text: 'hi' })); // { seq }
} catch (e) {
  if (!(e instanceof WsgateError) || e.code !== 'forbidden') throw e;
  console.log('this gateway does not let clients publish (--client-publish)');
}
const { topic, seq, data } = await received;
console.log('message', topic, seq, JSON.stringify(data));
console.log('positions', JSON.stringify(client.positions()));
await client.unsubscribe('news');
client.close();
