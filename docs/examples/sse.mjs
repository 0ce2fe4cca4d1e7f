// Run from the repository root against a gateway with the SSE door (npm start is one):
//   node docs/examples/sse.mjs
// In a browser EventSource is built in; in Node the `eventsource` package has the same API.
import { EventSource } from 'eventsource';

const base = 'http://127.0.0.1:8080';
const publish = (data) => fetch(`${base}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic: 'news', data }) });

/** Opens a stream; resolves each time `count` more messages arrived. Keeps the last event id. */
function open(url) {
  const es = new EventSource(url);
  const stream = { es, lastId: '', messages: [] };
  es.addEventListener('subscribed', (e) => (stream.lastId = e.lastEventId));
  es.addEventListener('gap', (e) => console.warn('gap', e.data)); // missed messages that cannot be replayed
  es.addEventListener('message', (e) => {
    stream.lastId = e.lastEventId; // a cursor for every topic of the stream
    stream.messages.push(JSON.parse(e.data)); // {"t":topic,"s":seq,"d":data}, as on the WebSocket
  });
  stream.ready = new Promise((resolve) => es.addEventListener('subscribed', resolve, { once: true }));
  return stream;
}
const until = async (cond) => {
  while (!cond()) await new Promise((r) => setTimeout(r, 20));
};

const first = open(`${base}/sse?topics=news`);
await first.ready;
await publish({ text: 'one' });
await until(() => first.messages.length === 1);
first.es.close();

// Away: these two are missed, then resumed from the last id (EventSource sends it as Last-Event-ID by
// itself when it reconnects; a new EventSource passes it as ?lastEventId=).
await publish({ text: 'two' });
await publish({ text: 'three' });
const again = open(`${base}/sse?topics=news&lastEventId=${encodeURIComponent(first.lastId)}`);
await until(() => again.messages.length === 2);
again.es.close();
console.log('resumed', again.messages.map((m) => `${m.s}:${m.d.text}`).join(' '));
