/**
 * Baseline: Socket.IO rooms. `?topics=a,b` joins rooms, the `pub` event `{topic, data}` publishes
 * with `io.to(topic).emit('m', {t, s, d})`. WebSocket transport only (no long-polling upgrade dance).
 *   node dist/bench/baselines/socketio.js --port 9003
 */
import * as http from 'node:http';
import { Server } from 'socket.io';
import { argNumber, argValue, topicsFromQuery } from '../lib/cli';

interface PubMessage {
  topic?: unknown;
  data?: unknown;
}

const host = argValue(process.argv, 'host') ?? '127.0.0.1';
const port = argNumber(process.argv, 'port', 9003);
const seqs = new Map<string, number>();
const server = http.createServer();
const io = new Server(server, { transports: ['websocket'], serveClient: false, perMessageDeflate: false });

io.on('connection', (socket) => {
  const q = socket.handshake.query.topics;
  const topics = topicsFromQuery(typeof q === 'string' ? q : undefined);
  if (topics.length > 0) void socket.join(topics);
  socket.on('pub', (m: PubMessage) => {
    if (typeof m?.topic !== 'string') return;
    const s = (seqs.get(m.topic) ?? 0) + 1;
    seqs.set(m.topic, s);
    io.to(m.topic).emit('m', { t: m.topic, s, d: m.data });
  });
});
server.on('error', (err) => {
  console.error(`socket.io baseline: ${err.message}`);
  process.exit(1);
});
server.listen(port, host);
process.on('SIGTERM', () => process.exit(0));
