/**
 * Baseline: the `ws` package broadcasting by looping over a Set of sockets, what most Node users
 * write. The delivery is serialised once per publish (a kindness to ws; many apps stringify per send).
 *   node dist/bench/baselines/ws.js --port 9002
 */
import { WebSocket, WebSocketServer } from 'ws';
import { argNumber, argValue, topicsFromQuery } from '../lib/cli';

interface PubMessage {
  op?: string;
  topic?: string;
  data?: unknown;
}

const host = argValue(process.argv, 'host') ?? '127.0.0.1';
const port = argNumber(process.argv, 'port', 9002);
const rooms = new Map<string, Set<WebSocket>>();
const seqs = new Map<string, number>();
const asText = { binary: false };

const wss = new WebSocketServer({ host, port, perMessageDeflate: false, maxPayload: 64 * 1024 });

wss.on('connection', (ws, req) => {
  const topics = topicsFromQuery(new URL(req.url ?? '/', 'http://localhost').searchParams.get('topics'));
  for (const t of topics) {
    let set = rooms.get(t);
    if (!set) rooms.set(t, (set = new Set()));
    set.add(ws);
  }
  ws.on('message', (data) => {
    const m = JSON.parse(data.toString()) as PubMessage;
    if (m.op !== 'pub' || typeof m.topic !== 'string') return;
    const s = (seqs.get(m.topic) ?? 0) + 1;
    seqs.set(m.topic, s);
    const frame = Buffer.from(JSON.stringify({ t: m.topic, s, d: m.data }));
    const set = rooms.get(m.topic);
    if (!set) return;
    for (const c of set) if (c.readyState === WebSocket.OPEN) c.send(frame, asText);
  });
  ws.on('close', () => {
    for (const t of topics) rooms.get(t)?.delete(ws);
  });
});
wss.on('error', (err) => {
  console.error(`ws baseline: ${err.message}`);
  process.exit(1);
});
process.on('SIGTERM', () => process.exit(0));
