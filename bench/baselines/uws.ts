/**
 * Baseline: raw uWebSockets.js, native pub/sub (`app.publish`) and nothing else: the ceiling for
 * this stack. Same contract as wsgate: `?topics=a,b` subscribes, `{"op":"pub",...}` publishes,
 * deliveries are `{"t":topic,"s":seq,"d":data}`.
 *   node dist/bench/baselines/uws.js --port 9001
 */
import * as uWS from 'uWebSockets.js';
import { argNumber, argValue, topicsFromQuery } from '../lib/cli';

interface PubMessage {
  op?: string;
  topic?: string;
  data?: unknown;
}

const host = argValue(process.argv, 'host') ?? '127.0.0.1';
const port = argNumber(process.argv, 'port', 9001);
const seqs = new Map<string, number>();
const app = uWS.App();

app.ws<{ topics: string[] }>('/*', {
  compression: uWS.DISABLED,
  maxPayloadLength: 64 * 1024,
  maxBackpressure: argNumber(process.argv, 'max-backpressure', 1024 * 1024),
  idleTimeout: 120,
  upgrade: (res, req, context) => {
    res.upgrade(
      { topics: topicsFromQuery(req.getQuery('topics')) },
      req.getHeader('sec-websocket-key'),
      req.getHeader('sec-websocket-protocol'),
      req.getHeader('sec-websocket-extensions'),
      context,
    );
  },
  open: (ws) => {
    for (const t of ws.getUserData().topics) ws.subscribe(t);
  },
  message: (_ws, message) => {
    const m = JSON.parse(Buffer.from(message).toString('utf8')) as PubMessage;
    if (m.op !== 'pub' || typeof m.topic !== 'string') return;
    const s = (seqs.get(m.topic) ?? 0) + 1;
    seqs.set(m.topic, s);
    app.publish(m.topic, JSON.stringify({ t: m.topic, s, d: m.data }), false);
  },
});

app.listen(host, port, (listenSocket) => {
  if (!listenSocket) {
    console.error(`uws baseline: cannot listen on ${host}:${port}`);
    process.exit(1);
  }
});
process.on('SIGTERM', () => {
  app.close();
  process.exit(0);
});
